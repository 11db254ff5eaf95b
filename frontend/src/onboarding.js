// Onboarding wizard and institution settings: live subdomain feedback, colour contrast check
// with a live portal preview, and the go-live progress. The server validates everything again.

const AA = 4.5;

function channel(value) {
  const c = value / 255;
  return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

export function contrastRatio(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function setUpSubdomain(form) {
  const input = form.querySelector("input[name=slug]");
  const feedback = form.querySelector("#subdomain-feedback");
  if (!input || !feedback) return;
  let latest = 0;
  const check = debounce(async () => {
    const value = input.value.trim().toLowerCase();
    if (!value) return;
    const ticket = ++latest;
    const url = `${form.dataset.checkUrl}?slug=${encodeURIComponent(value)}`;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok || ticket !== latest) return;
      const result = await response.json();
      feedback.textContent = result.ok ? `${result.host}: ${result.message}` : result.message;
      feedback.dataset.state = result.ok ? "ok" : "bad";
      input.setAttribute("aria-invalid", result.ok ? "false" : "true");
    } catch {
      // Offline or server busy: the form's own validation on submit still applies.
    }
  }, 250);
  input.addEventListener("input", check);
}

function setUpLook(form) {
  const preview = document.querySelector("[data-preview]");
  const colours = { primary_colour: "--p-primary", accent_colour: "--p-accent" };
  for (const [name, variable] of Object.entries(colours)) {
    const input = form.querySelector(`input[name=${name}]`);
    const feedback = form.querySelector(`[data-contrast-for=${name}]`);
    if (!input) continue;
    // The text box takes #RRGGBB (the # optional); the colour square beside it follows it, and
    // choosing in the square writes the text.
    const picker = form.querySelector(`[data-colour-picker-for=${name}]`);
    const typed = () => {
      const text = input.value.trim();
      const hex = text.startsWith("#") ? text : `#${text}`;
      return /^#[0-9a-fA-F]{6}$/.test(hex) ? hex.toLowerCase() : null;
    };
    if (picker) {
      picker.hidden = false;
      if (typed()) picker.value = typed();
      picker.addEventListener("input", () => {
        input.value = picker.value;
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
    }
    const update = () => {
      const value = typed();
      if (!value) {
        if (feedback && input.value.trim()) {
          feedback.textContent = "Write the colour as # and six hexadecimal digits, for example #1f4e79.";
          feedback.dataset.state = "bad";
        }
        return;
      }
      if (picker && picker.value !== value) picker.value = value;
      if (preview) preview.style.setProperty(variable, value);
      const ratio = contrastRatio(value, "#ffffff");
      if (feedback) {
        feedback.textContent =
          ratio >= AA
            ? `Contrast with white ${ratio.toFixed(1)}:1, readable (WCAG AA).`
            : `Contrast with white ${ratio.toFixed(1)}:1, too low: needs 4.5:1. Choose a darker shade.`;
        feedback.dataset.state = ratio >= AA ? "ok" : "bad";
      }
    };
    input.addEventListener("input", update);
    update();
  }
  for (const name of ["tagline", "welcome_text"]) {
    const input = form.querySelector(`[name=${name}]`);
    const target = preview && preview.querySelector(`[data-preview-text=${name}]`);
    if (input && target) input.addEventListener("input", () => (target.textContent = input.value));
  }
  const logo = form.querySelector("input[type=file][name=logo]");
  const image = preview && preview.querySelector(".pp-logo");
  if (logo && image) {
    logo.addEventListener("change", () => {
      const file = logo.files && logo.files[0];
      if (!file) return;
      image.src = URL.createObjectURL(file);
      image.hidden = false;
    });
  }
}

function setUpProgress(box) {
  const message = box.querySelector("#go-live-message");
  const bar = box.querySelector("#go-live-bar");
  const result = box.querySelector("#go-live-result");
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.progressUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.ok) {
        const state = await response.json();
        message.textContent = state.message;
        bar.value = state.percent;
        if (state.state === "live" && state.percent >= 100) {
          result.hidden = false;
          return;
        }
        if (state.state === "failed") {
          window.location.reload();
          return;
        }
      }
    } catch {
      // Keep polling: a brief network hiccup must not stop the progress display.
    }
    setTimeout(poll, 400);
  };
  poll();
}

// A time zone still at the default (UTC) starts as the browser's own, which is most often the
// institution's: the admin sees it chosen and can change it before saving.
function suggestBrowserZone(select) {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return;
  }
  if (zone && [...select.options].some((option) => option.value === zone)) select.value = zone;
}

document.querySelectorAll("select[data-suggest-browser-zone]").forEach(suggestBrowserZone);
document.querySelectorAll("[data-subdomain-form]").forEach(setUpSubdomain);
document.querySelectorAll("[data-look-form]").forEach(setUpLook);
document.querySelectorAll("[data-go-live-progress]").forEach(setUpProgress);
