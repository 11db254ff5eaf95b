// Entry point of the image viewer, kept small: for every [data-sr-viewer] element (the case
// workspace and the standalone viewer page include templates/imaging/viewer/viewer.html) it draws
// the series list and paints the first image from the page's own JSON (viewer/first.js), then
// loads the full viewer (viewer/app.js: Cornerstone3D, its tools and decoders, ~4 MB) and
// hands over to it.
import { paintFirstImage } from "./viewer/first.js";
import { renderSeriesList, seriesLabel } from "./viewer/series_list.js";

function bootstrapOf(root) {
  const script = root.dataset.boot && document.getElementById(root.dataset.boot);
  try {
    return script ? JSON.parse(script.textContent) : null;
  } catch {
    return null;
  }
}

async function start(root) {
  const boot = bootstrapOf(root);
  let list = null;
  if (boot) {
    const all = boot.studies.flatMap((study) => study.series);
    list = renderSeriesList(root.querySelector("[data-series-list]"), all, boot.base);
    const opening = all.find((series) => series.uid === boot.first?.seriesUid);
    if (opening) {
      root.querySelector(`[data-series-list] button[data-series-uid="${opening.uid}"]`)?.setAttribute("aria-current", "true");
      root.querySelector("[data-series-label]").textContent = seriesLabel(opening);
    }
  }
  const first = await paintFirstImage(root, boot).catch(() => null);
  // Only now: parsing and starting Cornerstone would otherwise hold the main thread while the
  // first frame arrives. Thumbnails wait too, not to compete with that frame for the server.
  list?.loadThumbnails();
  const { mountViewer } = await import("./viewer/app.js");
  await mountViewer(root, { boot, first, list });
}

for (const root of document.querySelectorAll("[data-sr-viewer]")) {
  start(root);
}
