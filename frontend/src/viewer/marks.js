// Measurements and key images saved with the case (imaging/viewer/api.py), for staff only: the
// page gives the API's address (data-annotations-url) and a CSRF token only to staff. The list
// under the viewer shows every saved mark; "Show" opens its image, "Remove" deletes it.
import { utilities as csUtils } from "@cornerstonejs/core";

import { dicomDate } from "./series_list.js";

export const SAVE_FAILED = "The mark could not be saved";

async function call(url, token, method, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `${SAVE_FAILED} (the server answered ${response.status}).`);
  return answer;
}

export class Marks {
  constructor(viewer, root) {
    this.viewer = viewer;
    this.url = root.dataset.annotationsUrl || "";
    this.token = root.dataset.csrfToken || "";
    this.list = root.querySelector("[data-marks]");
    this.status = root.querySelector("[data-marks-status]");
    this.items = [];
  }

  get enabled() {
    return Boolean(this.url && this.list);
  }

  async load() {
    if (!this.enabled) return;
    try {
      const answer = await call(this.url, this.token, "GET");
      this.items = answer.annotations || [];
    } catch (error) {
      this.say(error.message);
    }
    this.draw();
  }

  say(text) {
    if (this.status) this.status.textContent = text;
  }

  async save(body) {
    if (!this.enabled) return null;
    try {
      const saved = await call(this.url, this.token, "POST", body);
      this.items.push(saved);
      this.say(saved.kind === "key_image" ? "Key image saved." : "Measurement saved.");
      this.draw();
      return saved;
    } catch (error) {
      this.say(error.message);
      return null;
    }
  }

  async remove(item) {
    try {
      await call(`${this.url}${item.id}/`, this.token, "DELETE");
      this.items = this.items.filter((other) => other.id !== item.id);
      this.say("Removed.");
      this.draw();
    } catch (error) {
      this.say(error.message);
    }
  }

  // A finished Cornerstone measurement, saved in image pixel coordinates.
  saveMeasurement(kind, found, label) {
    const imageId = found.metadata?.referencedImageId;
    const match = imageId && /\/instances\/([^/]+)\/frames\/(\d+)$/.exec(imageId);
    if (!match) return null;
    let points = (found.data?.handles?.points || []).map((world) => {
      const [x, y] = csUtils.worldToImageCoords(imageId, world);
      return [x, y];
    });
    if (kind === "ellipse" && points.length === 4) {
      // Cornerstone keeps the ellipse as its four axis ends; saved as its bounding box.
      const xs = points.map(([x]) => x);
      const ys = points.map(([, y]) => y);
      points = [
        [Math.min(...xs), Math.min(...ys)],
        [Math.max(...xs), Math.max(...ys)],
      ];
    }
    return this.save({ kind, sopInstanceUid: match[1], frame: Number(match[2]), points, label });
  }

  saveKeyImage(pane) {
    const image = pane.currentImage();
    if (!image) return null;
    const voi = pane.viewport.getProperties()?.voiRange;
    const window = voi && !pane.viewport.getCornerstoneImage?.()?.color ? [(voi.upper + voi.lower) / 2, voi.upper - voi.lower] : null;
    return this.save({ kind: "key_image", sopInstanceUid: image.sopUid, frame: image.frame, points: [], window });
  }

  describe(item) {
    const series = this.viewer.seriesByUid(item.seriesUid);
    const name = series ? `${series.modality} ${series.description || ""}`.trim() : "Image";
    const what = item.kind === "key_image" ? "Key image" : item.label || item.kind;
    return `${what} · ${name}${item.frame > 1 ? `, frame ${item.frame}` : ""} · ${item.author}, ${dicomDate(item.created.slice(0, 10).replaceAll("-", ""))}`;
  }

  draw() {
    if (!this.list) return;
    this.list.textContent = "";
    for (const item of this.items) {
      const row = document.createElement("li");
      row.dataset.kind = item.kind;
      const text = document.createElement("span");
      text.textContent = this.describe(item);
      const show = document.createElement("button");
      show.type = "button";
      show.textContent = "Show";
      show.addEventListener("click", () => this.viewer.openImage(item.seriesUid, item.sopInstanceUid, item.frame));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.dataset.remove = "";
      remove.addEventListener("click", () => this.remove(item));
      row.append(text, show, remove);
      this.list.append(row);
    }
    this.list.closest("[data-marks-panel]")?.toggleAttribute("hidden", !this.enabled);
  }
}
