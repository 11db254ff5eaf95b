// Entry point of the image viewer: mounts every [data-sr-viewer] element on the page
// (the case workspace and the standalone viewer page include templates/review/viewer/viewer.html).
import { mountViewer } from "./viewer/app.js";

for (const root of document.querySelectorAll("[data-sr-viewer]")) {
  mountViewer(root);
}
