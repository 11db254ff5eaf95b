// The server's view of the files (counts, studies, plain-words problems), polled while files
// are being checked after upload.

// Often enough that the counts move with the images being checked, not in jumps.
const POLL_MS = 1000;
const POLL_LIMIT_MS = 15 * 60 * 1000;

// The lists are rendered by the server with the page's own templates (its words translated);
// a list is replaced only when it changed, and never while the patient is changing its form.
const shownHtml = new WeakMap();

function showHtml(target, html) {
  if (!target || html === undefined) return;
  // The CSRF token is masked anew in every answer: not a change worth redrawing for.
  const content = html.replace(/name="csrfmiddlewaretoken" value="[^"]*"/g, "");
  if (shownHtml.get(target) === content || target.querySelector("form[data-dirty]")) return;
  target.innerHTML = html; // our own server-rendered, escaped markup
  shownHtml.set(target, content);
}

document.addEventListener("change", (event) => {
  const form = event.target.closest && event.target.closest("form[data-study-choice], form[data-report-kinds-form]");
  if (form) form.dataset.dirty = "true";
});

export function watchServerStatus() {
  const images = document.querySelector("[data-server-status]");
  const studies = document.querySelector("[data-server-studies]");
  const reports = document.querySelector("[data-server-reports]");
  const target = images || reports;
  if (!target) return { refresh: () => {} };
  const url = target.dataset.statusUrl;
  let timer = null;
  let started = 0;
  // Answers can arrive out of order (a refresh asked for while one is on its way): only the
  // answer to the latest question is shown, so counts never step back.
  let asked = 0;
  let shown = 0;

  async function refresh() {
    clearTimeout(timer);
    if (!started) started = Date.now();
    const question = ++asked;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      if (question < shown) return;
      shown = question;
      showHtml(images, data.html.received);
      showHtml(studies, data.html.studies);
      showHtml(reports, data.html.reports);
      if (question !== asked) return; // a newer refresh is on its way and will schedule the next
      if (data.uploads.processing + data.reports_checking > 0 && Date.now() - started < POLL_LIMIT_MS) {
        timer = setTimeout(refresh, POLL_MS);
      } else {
        started = 0;
      }
    } catch {
      timer = setTimeout(refresh, POLL_MS * 3);
    }
  }
  return { refresh };
}
