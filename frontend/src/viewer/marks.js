// Measurements and key images saved with the case (imaging/viewer/api.py), for staff only: the
// page gives the API's address (data-annotations-url) and a CSRF token only to staff. The list
// under the viewer shows every saved mark; "Show" opens its image, "Remove" deletes it.
//
// Saved measurements are drawn again where they were made: when a pane's stack is complete (every
// image's geometry known), each saved measurement of one of its images becomes a Cornerstone
// annotation again (image pixel coordinates back to world coordinates), shown whenever that
// image is on screen. Their annotation UIDs are "sr-mark-<saved id>", so one is never drawn twice.
import { utilities as csUtils } from "@cornerstonejs/core";
import {
  AngleTool,
  EllipticalROITool,
  LengthTool,
  annotation as csAnnotation,
  utilities as toolUtilities,
} from "@cornerstonejs/tools";

import { gettext } from "../i18n.js";
import { dicomDate } from "./series_list.js";

export const SAVE_FAILED = gettext("The mark could not be saved");

const TOOL_OF = { length: LengthTool, angle: AngleTool, ellipse: EllipticalROITool };

// The saved points (image pixels) as Cornerstone keeps the tool's handles: a line's two ends, an
// angle's three points, and for an ellipse its four axis ends (bottom, top, left, right) from the
// saved bounding box.
function handlePoints(item) {
  if (item.kind !== "ellipse") return item.points;
  const [[x0, y0], [x1, y1]] = item.points;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  return [
    [cx, y0],
    [cx, y1],
    [x0, cy],
    [x1, cy],
  ];
}

const markUid = (item) => `sr-mark-${item.id}`;

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
    this.restoreAll();
  }

  say(text) {
    if (this.status) this.status.textContent = text;
  }

  async save(body, annotationUid = null) {
    if (!this.enabled) return null;
    try {
      const saved = await call(this.url, this.token, "POST", body);
      if (annotationUid) saved.annotationUid = annotationUid; // already on screen: not drawn again
      this.items.push(saved);
      this.say(saved.kind === "key_image" ? gettext("Key image saved.") : gettext("Measurement saved."));
      this.draw();
      return saved;
    } catch (error) {
      this.say(error.message);
      return null;
    }
  }

  // Draw the saved measurements of the images in ``pane`` (its stack complete: every image's
  // geometry is known) that are not on it already.
  restore(pane) {
    if (!pane?.imageIds.length || pane.node.dataset.stack !== "complete") return;
    let added = 0;
    for (const item of this.items) {
      const Tool = TOOL_OF[item.kind];
      if (!Tool || this.drawnUid(item)) continue;
      const path = `/studies/${item.studyUid}/series/${item.seriesUid}/instances/${item.sopInstanceUid}/frames/${item.frame}`;
      const imageId = pane.imageIds.find((id) => id.endsWith(path));
      if (!imageId) continue;
      let points;
      try {
        points = handlePoints(item).map(([x, y]) => Array.from(csUtils.imageToWorldCoords(imageId, [x, y])));
      } catch {
        continue; // no geometry for this image (yet): drawn on a later visit
      }
      if (!points.every((point) => point && point.every(Number.isFinite))) continue;
      const camera = pane.viewport.getCamera();
      const restored = Tool.createAnnotation(
        {
          metadata: {
            referencedImageId: imageId,
            FrameOfReferenceUID: pane.viewport.getFrameOfReferenceUID(),
            viewPlaneNormal: camera.viewPlaneNormal,
            viewUp: camera.viewUp,
          },
        },
        { annotationUID: markUid(item), highlighted: false, data: { handles: { points } } },
      );
      csAnnotation.state.addAnnotation(restored, pane.element);
      added += 1;
    }
    if (added) toolUtilities.triggerAnnotationRenderForViewportIds([pane.id]);
  }

  restoreAll() {
    for (const pane of this.viewer.panes) this.restore(pane);
  }

  // The Cornerstone annotation showing ``item``, if one does: one restored from the server, or
  // the one the reader drew in this visit.
  drawnUid(item) {
    for (const uid of [markUid(item), item.annotationUid]) {
      if (uid && csAnnotation.state.getAnnotation(uid)) return uid;
    }
    return null;
  }

  async remove(item) {
    try {
      await call(`${this.url}${item.id}/`, this.token, "DELETE");
      const uid = this.drawnUid(item);
      if (uid) {
        csAnnotation.state.removeAnnotation(uid);
        toolUtilities.triggerAnnotationRenderForViewportIds(this.viewer.panes.map((pane) => pane.id));
      }
      this.items = this.items.filter((other) => other.id !== item.id);
      this.say(gettext("Removed."));
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
    return this.save({ kind, sopInstanceUid: match[1], frame: Number(match[2]), points, label }, found.annotationUID);
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
    const name = series ? `${series.modality} ${series.description || ""}`.trim() : gettext("Image");
    const what = item.kind === "key_image" ? gettext("Key image") : item.label || item.kind;
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
      show.textContent = gettext("Show");
      show.addEventListener("click", () => this.viewer.openImage(item.seriesUid, item.sopInstanceUid, item.frame));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = gettext("Remove");
      remove.dataset.remove = "";
      remove.addEventListener("click", () => this.remove(item));
      row.append(text, show, remove);
      this.list.append(row);
    }
    this.list.closest("[data-marks-panel]")?.toggleAttribute("hidden", !this.enabled);
  }
}
