// The case workspace: reports drawn with pdf.js, and the opinion draft saved as the reviewer writes.
import { pdfRenderAll } from "./pdfview.js";

const AUTOSAVE_EVERY_MS = 4000;

function autosave(form) {
  const status = form.querySelector(".autosave-status");
  let dirty = false;
  let saving = false;

  async function save() {
    if (!dirty || saving) return;
    saving = true;
    dirty = false;
    if (status) status.textContent = "Saving…";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok && body.saved) {
        if (status) status.textContent = `Draft saved ${body.updated}`;
      } else {
        dirty = true;
        if (status) status.textContent = body.error || "Not saved: check your connection. Your text is still here.";
      }
    } catch (error) {
      dirty = true;
      if (status) status.textContent = "Not saved: check your connection. Your text is still here.";
    } finally {
      saving = false;
    }
  }

  form.addEventListener("input", () => {
    dirty = true;
    if (status) status.textContent = "Unsaved changes";
  });
  form.addEventListener("change", () => { dirty = true; });
  form.addEventListener("focusout", save);
  setInterval(save, AUTOSAVE_EVERY_MS);
  // Signing posts another form: save the draft first so the signed text is what is on screen.
  const signForm = document.querySelector(".sign-form");
  if (signForm) {
    signForm.addEventListener("submit", async (event) => {
      if (!dirty && !saving) return;
      event.preventDefault();
      while (saving) await new Promise((resolve) => setTimeout(resolve, 50));
      await save();
      signForm.submit();
    });
  }
  window.addEventListener("beforeunload", (event) => {
    if (dirty) event.preventDefault();
  });
}

for (const form of document.querySelectorAll("form[data-autosave]")) autosave(form);
pdfRenderAll();
