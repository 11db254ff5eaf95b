// The patient's request wizard: choosing a CD folder, files or a zip, showing what was found
// before sending, sending with tus (resumable), and the server's verdict on each file.
import { entriesFromDrop, entriesFromInput, scanFiles } from "./intake/scan.js";
import { watchServerStatus } from "./intake/status.js";
import { gettext, interpolate, ngettext, pageLanguage } from "./i18n.js";
import { formatBytes, formatDate, formatNumber, h } from "./intake/ui.js";
import { pendingCount, uploadAll } from "./intake/upload.js";

const SKIP_WORDS = {
  index: gettext("the disc's index (DICOMDIR)"),
  program: gettext("viewer programs and other files that are not images"),
  empty: gettext("empty files"),
  "not-image": gettext("files that are not medical images"),
};

// A translated text with "%(count)s" (and any other placeholders) filled in, the count
// written the page's way.
function counted(text, count, values = {}) {
  return interpolate(text, { ...values, count: formatNumber(count) });
}
const REPORT_TYPES = /\.(pdf|jpe?g|png)$/i;

function focusFirstError() {
  const summary = document.querySelector("[data-autofocus]");
  if (summary) summary.focus();
}

function setupUploader(root, status) {
  const kind = root.dataset.kind;
  const caseId = root.dataset.case;
  const options = {
    endpoint: root.dataset.endpoint,
    caseId,
    kind,
    chunkSize: Number(root.dataset.chunkSize),
    csrf: root.dataset.csrf,
  };
  const dropzone = root.querySelector("[data-dropzone]");
  const scanStatus = root.querySelector("[data-scan-status]");
  const found = root.querySelector("[data-found]");
  const foundBody = root.querySelector("[data-found-body]");
  const startButton = root.querySelector("[data-start-upload]");
  const clearButton = root.querySelector("[data-clear]");
  const progress = root.querySelector("[data-progress]");
  const bar = root.querySelector("[data-progress-bar]");
  const progressText = root.querySelector("[data-progress-text]");
  const resumeHint = root.querySelector("[data-resume-hint]");
  const kinds = root.querySelector("[data-report-kinds]");
  const kindMissing = root.querySelector("[data-kind-missing]");
  let queue = [];
  let busy = false;

  if (resumeHint && pendingCount(caseId, kind) > 0) {
    resumeHint.hidden = false;
    resumeHint.className = "notice warn resume-hint";
    const pending = pendingCount(caseId, kind);
    resumeHint.textContent = counted(
      ngettext(
        "An earlier upload of %(count)s file did not finish. Choose the same folder or files again: sending continues where it stopped.",
        "An earlier upload of %(count)s files did not finish. Choose the same folder or files again: sending continues where it stopped.",
        pending,
      ),
      pending,
    );
  }

  window.addEventListener("beforeunload", (event) => {
    if (busy) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  function reset() {
    queue = [];
    found.hidden = true;
    foundBody.replaceChildren();
    scanStatus.textContent = "";
  }

  function showImagingScan(result) {
    const parts = [];
    const images = result.images.length;
    if (images) {
      const studyCount = result.studies.length;
      const imageWords = counted(ngettext("%(count)s image", "%(count)s images", images), images);
      parts.push(
        h(
          "p",
          { "data-testid": "scan-summary" },
          studyCount
            ? counted(ngettext("We found %(count)s study with %(images)s.", "We found %(count)s studies with %(images)s.", studyCount), studyCount, { images: imageWords })
            : interpolate(gettext("We found %(images)s."), { images: imageWords }),
        ),
      );
      parts.push(
        h(
          "ul",
          { class: "study-list", "data-testid": "scan-studies" },
          result.studies.map((s) =>
            h(
              "li",
              { class: "study" },
              h("div", { class: "study-title" }, s.modalities.map((m) => h("span", { class: "modality" }, m)), formatDate(s.date)),
              h(
                "div",
                { class: "study-meta" },
                [
                  s.description || gettext("No description"),
                  counted(ngettext("%(count)s series", "%(count)s series", s.series), s.series),
                  counted(ngettext("%(count)s image", "%(count)s images", s.images), s.images),
                ].join(" · "),
              ),
            ),
          ),
        ),
      );
      if (result.unreadable) {
        parts.push(
          h(
            "p",
            { class: "muted" },
            counted(
              ngettext(
                "%(count)s image file could not be read here; we send it anyway and check it on our side.",
                "%(count)s image files could not be read here; we send them anyway and check them on our side.",
                result.unreadable,
              ),
              result.unreadable,
            ),
          ),
        );
      }
    }
    if (result.reports.length && kinds) {
      parts.push(
        h("h3", {}, ngettext("A report on the disc", "Reports on the disc", result.reports.length)),
        h("p", { "data-testid": "scan-reports" }, ngettext("We also send this report. Please choose what it is.", "We also send these reports. Please choose what each one is.", result.reports.length)),
        h(
          "ul",
          { class: "file-rows" },
          result.reports.map((item, index) =>
            h(
              "li",
              { class: "file-row" },
              h("span", { class: "file-name" }, item.relativePath),
              h("span", {}, h("label", { for: `report-kind-${index}`, class: "visually-hidden" }, interpolate(gettext("Type of %(name)s"), { name: item.file.name })), kindSelect(item, index)),
            ),
          ),
        ),
      );
    }
    if (result.zips.length) {
      const bytes = result.zips.reduce((sum, z) => sum + z.file.size, 0);
      parts.push(
        h(
          "p",
          { "data-testid": "scan-zips" },
          counted(
            ngettext("%(count)s zip file (%(size)s): we open and check it after sending.", "%(count)s zip files (%(size)s): we open and check them after sending.", result.zips.length),
            result.zips.length,
            { size: formatBytes(bytes) },
          ),
        ),
      );
    }
    if (result.morePatients) {
      parts.push(h("p", { class: "notice warn" }, gettext("These files seem to belong to more than one person (different names or dates of birth). Please check that you chose only this patient's images.")));
    }
    if (result.skipped.length) {
      const reasons = [...new Set(result.skipped.map((s) => SKIP_WORDS[s.reason] || SKIP_WORDS.program))];
      parts.push(
        h(
          "div",
          { class: "skipped" },
          h(
            "p",
            { "data-testid": "scan-skipped" },
            counted(ngettext("%(count)s file skipped: %(reasons)s.", "%(count)s files skipped: %(reasons)s.", result.skipped.length), result.skipped.length, {
              reasons: reasons.join(", "),
            }),
          ),
          h(
            "details",
            {},
            h("summary", {}, gettext("Show which files")),
            h("ul", {}, result.skipped.slice(0, 500).map((s) => h("li", {}, s.relativePath))),
          ),
        ),
      );
    }
    if (!result.toUpload.length) {
      parts.push(h("p", { class: "notice warn" }, gettext("We found no medical images here. On a CD, choose the top folder of the disc (the one with a file called DICOMDIR), or a folder named DICOM.")));
    }
    foundBody.replaceChildren(...parts);
    startButton.hidden = !result.toUpload.length;
    const fileCount = result.images.length + result.zips.length + result.reports.length;
    startButton.textContent =
      result.images.length || result.reports.length
        ? counted(ngettext("Send %(count)s file", "Send %(count)s files", fileCount), fileCount)
        : ngettext("Send the zip", "Send the zips", result.zips.length);
  }

  function kindSelect(item, index) {
    const select = h("select", { id: `report-kind-${index}`, "data-report-kind": index });
    select.innerHTML = kinds.innerHTML; // fixed option list from our own template
    select.value = item.reportKind;
    select.addEventListener("change", () => {
      item.reportKind = select.value;
      if (kindMissing) kindMissing.hidden = true;
    });
    return select;
  }

  function showReports() {
    const rows = queue.map((item, index) => {
      const select = kindSelect(item, index);
      const remove = h("button", { type: "button", class: "button secondary" }, gettext("Remove"), h("span", { class: "visually-hidden" }, ` ${item.file.name}`));
      remove.addEventListener("click", () => {
        queue.splice(index, 1);
        if (queue.length) showReports();
        else reset();
      });
      return h(
        "li",
        { class: "file-row" },
        h("span", { class: "file-name" }, item.file.name, h("span", { class: "muted" }, ` (${formatBytes(item.file.size)})`)),
        h("span", {}, h("label", { for: `report-kind-${index}`, class: "visually-hidden" }, interpolate(gettext("Type of %(name)s"), { name: item.file.name })), select),
        remove,
      );
    });
    foundBody.replaceChildren(h("ul", { class: "file-rows" }, rows), h("p", { class: "help" }, gettext("Choose what each report is.")));
    startButton.textContent = counted(ngettext("Send %(count)s report", "Send %(count)s reports", queue.length), queue.length);
    startButton.hidden = false;
    found.hidden = false;
  }

  async function choose(entries) {
    if (busy || !entries.length) return;
    reset();
    if (kind === "report") {
      const accepted = entries.filter((e) => REPORT_TYPES.test(e.file.name) && e.file.size > 0);
      const refused = entries.length - accepted.length;
      queue = accepted.map((e) => ({ ...e, reportKind: "" }));
      scanStatus.textContent = refused
        ? counted(ngettext("%(count)s file was left out: reports must be PDF, JPEG or PNG files.", "%(count)s files were left out: reports must be PDF, JPEG or PNG files.", refused), refused)
        : "";
      if (queue.length) {
        showReports();
        found.querySelector("h2").focus();
      }
      return;
    }
    scanStatus.textContent = counted(ngettext("Looking through %(count)s file…", "Looking through %(count)s files…", entries.length), entries.length);
    const result = await scanFiles(entries, (done, total) => {
      if (total > 200) {
        scanStatus.textContent = interpolate(gettext("Looking through the files… %(done)s of %(total)s"), { done: formatNumber(done), total: formatNumber(total) });
      }
    });
    queue = result.toUpload;
    scanStatus.textContent = "";
    showImagingScan(result);
    found.hidden = false;
    found.querySelector("h2").focus();
  }

  async function send() {
    if (busy || !queue.length) return;
    const unchosen = queue.find((item) => (item.type === "report" || kind === "report") && !item.reportKind);
    if (unchosen && kindMissing) {
      kindMissing.hidden = false;
      const select = [...root.querySelectorAll("[data-report-kind]")].find((element) => !element.value);
      if (select) select.focus();
      return;
    }
    busy = true;
    startButton.disabled = true;
    clearButton.disabled = true;
    progress.hidden = false;
    const items = queue.slice();
    let lastAnnounced = -1;
    // While later files are still being sent, the server is already checking the first ones:
    // show its counts as they come (at most once a second).
    let lastRefresh = 0;
    const result = await uploadAll(items, {
      ...options,
      onUnitDone: () => {
        if (Date.now() - lastRefresh > 1000) {
          lastRefresh = Date.now();
          status.refresh();
        }
      },
      onProgress: ({ bytes, total, sent, count }) => {
        const percent = Math.floor((bytes / total) * 100);
        bar.value = percent;
        // Announce in steps of 10% so screen readers are not flooded.
        if (Math.floor(percent / 10) !== lastAnnounced || sent === count) {
          lastAnnounced = Math.floor(percent / 10);
          progressText.textContent = interpolate(ngettext("%(percent)s sent · %(sent)s of %(count)s file done", "%(percent)s sent · %(sent)s of %(count)s files done", count), {
            percent: (percent / 100).toLocaleString(pageLanguage, { style: "percent" }),
            sent: formatNumber(sent),
            count: formatNumber(count),
          });
        }
      },
    });
    busy = false;
    clearButton.disabled = false;
    startButton.disabled = false;
    if (result.failed.length) {
      queue = result.failed.map((f) => f.item);
      const reason = result.failed.find((f) => f.message);
      const sentWords = counted(ngettext("%(count)s file sent.", "%(count)s files sent.", result.sent), result.sent);
      const failedWords = reason
        ? counted(ngettext("%(count)s file could not be sent: %(reason)s.", "%(count)s files could not be sent: %(reason)s.", result.failed.length), result.failed.length, { reason: reason.message })
        : counted(ngettext("%(count)s file could not be sent.", "%(count)s files could not be sent.", result.failed.length), result.failed.length);
      progressText.textContent = `${sentWords} ${failedWords} ${gettext("Check your connection and press “Try again”.")}`;
      startButton.textContent = gettext("Try again");
    } else {
      queue = [];
      bar.value = 100;
      progressText.textContent =
        kind === "report"
          ? counted(ngettext("%(count)s report sent.", "All %(count)s reports sent.", result.sent), result.sent)
          : counted(
              ngettext("%(count)s file sent. We are now checking it; the result appears below.", "All %(count)s files sent. We are now checking them; the result appears below.", result.sent),
              result.sent,
            );
      progressText.dataset.done = "true";
      found.hidden = true;
    }
    status.refresh();
  }

  for (const input of root.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", () => {
      choose(entriesFromInput(input));
      input.value = "";
    });
  }
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("dragging");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", async (event) => {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    choose(await entriesFromDrop(event.dataTransfer));
  });
  startButton.addEventListener("click", send);
  clearButton.addEventListener("click", reset);
  root.dataset.ready = "true";
}

const status = watchServerStatus();
for (const root of document.querySelectorAll(".uploader")) setupUploader(root, status);
if (document.querySelector("[data-server-status], [data-server-reports]")) status.refresh();
focusFirstError();
