// The server's view of the files (counts, studies, plain-words problems), polled while files
// are being checked after upload.
import { formatDate, h, plural } from "./ui.js";

// Often enough that the counts move with the images being checked, not in jumps.
const POLL_MS = 1000;
const POLL_LIMIT_MS = 15 * 60 * 1000;

function renderImages(target, data) {
  const u = data.uploads;
  const parts = [];
  if (!u.imaging) {
    parts.push(h("p", { class: "muted" }, "No images received yet."));
  } else {
    let line = `${plural(u.imaging, "image file", "image files")} received`;
    if (u.processing) line += `, ${u.processing} still being checked`;
    line += ".";
    if (data.study_count) {
      line += ` ${plural(data.study_count, "study", "studies")}, ${data.series_count} series, ${plural(data.image_count, "image", "images")}.`;
    }
    parts.push(h("p", { "data-testid": "received-summary" }, line));
    if (data.studies.length) {
      parts.push(
        h(
          "ul",
          { class: "study-list" },
          data.studies.map((s) =>
            h(
              "li",
              { class: "study" },
              h("strong", {}, s.modalities || "Imaging"),
              ` · ${formatDate(s.date)}`,
              s.description ? ` · ${s.description}` : "",
              h("br"),
              h("span", { class: "muted" }, `${s.series} series, ${plural(s.images, "image", "images")}`),
            ),
          ),
        ),
      );
    }
  }
  if (data.more_than_one_patient) {
    parts.push(
      h("p", { class: "notice warn" }, "These images seem to belong to more than one person. Please check that you uploaded only this patient's images."),
    );
  }
  for (const group of data.problems) {
    parts.push(
      h(
        "details",
        { class: group.informational ? "problems" : "problems notice warn", open: !group.informational },
        h("summary", {}, `${group.title}: ${plural(group.count, "file", "files")}`),
        group.messages.map((message) => h("p", {}, message)),
        group.files.length ? h("ul", {}, group.files.map((file) => h("li", {}, file))) : null,
      ),
    );
  }
  target.replaceChildren(...parts);
}

function renderReports(target, data) {
  if (!data.reports.length) {
    target.replaceChildren(h("p", { class: "muted" }, "No reports received yet."));
    return;
  }
  target.replaceChildren(
    h(
      "ul",
      { class: "report-list", "data-testid": "reports-received" },
      data.reports.map((r) => h("li", {}, h("strong", {}, r.name), ` · ${r.kind}`, r.complete ? "" : h("span", { class: "muted" }, " (not finished)"))),
    ),
  );
}

export function watchServerStatus() {
  const images = document.querySelector("[data-server-status]");
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
      if (images) renderImages(images, data);
      if (reports) renderReports(reports, data);
      if (question !== asked) return; // a newer refresh is on its way and will schedule the next
      if (data.uploads.processing > 0 && Date.now() - started < POLL_LIMIT_MS) {
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
