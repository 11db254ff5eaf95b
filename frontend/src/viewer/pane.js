// One image pane of the viewer: a Cornerstone stack viewport, its overlays (whose images, which
// series, which image, window, calibration) and its message. The viewer has one pane, or two or
// four side by side (layout.js); the series list loads into the active one.
import { Enums, getRenderingEngine } from "@cornerstonejs/core";
import { wadors } from "@cornerstonejs/dicom-image-loader";
import { utilities as toolUtilities } from "@cornerstonejs/tools";

import { TAG, loadInstanceMetadata, loadSeriesMetadata, searchInstances, value } from "./dicomweb.js";
import { prepareMetadata } from "./metadata.js";
import { dicomDate, seriesLabel } from "./series_list.js";
import { autoWindow, fileWindows, voiRangeOf } from "./windowing.js";
import { gettext, interpolate } from "../i18n.js";

// "Image 3 / 24"
const imagePosition = (index, count) => interpolate(gettext("Image %(index)s / %(count)s"), { index, count });

// Transfer syntaxes the image loader decodes (uncompressed, RLE, JPEG baseline / extended /
// lossless, JPEG-LS, JPEG 2000, HTJ2K, deflate). Anything else gets a message, not a blank canvas.
const DECODABLE = new Set([
  "1.2.840.10008.1.2",
  "1.2.840.10008.1.2.1",
  "1.2.840.10008.1.2.2",
  "1.2.840.10008.1.2.1.99",
  "1.2.840.10008.1.2.5",
  "1.2.840.10008.1.2.4.50",
  "1.2.840.10008.1.2.4.51",
  "1.2.840.10008.1.2.4.57",
  "1.2.840.10008.1.2.4.70",
  "1.2.840.10008.1.2.4.80",
  "1.2.840.10008.1.2.4.81",
  "1.2.840.10008.1.2.4.90",
  "1.2.840.10008.1.2.4.91",
  "3.2.840.10008.1.2.4.96",
  "1.2.840.10008.1.2.4.201",
  "1.2.840.10008.1.2.4.202",
  "1.2.840.10008.1.2.4.203",
]);
const SYNTAX_NAMES = {
  "1.2.840.10008.1.2.4.100": "MPEG-2 video",
  "1.2.840.10008.1.2.4.101": "MPEG-2 video",
  "1.2.840.10008.1.2.4.102": "MPEG-4 video",
  "1.2.840.10008.1.2.4.103": "MPEG-4 video",
  "1.2.840.10008.1.2.4.104": "MPEG-4 video",
  "1.2.840.10008.1.2.4.105": "MPEG-4 video",
  "1.2.840.10008.1.2.4.106": "MPEG-4 video",
  "1.2.840.10008.1.2.4.107": "HEVC video",
  "1.2.840.10008.1.2.4.108": "HEVC video",
};
export const UNSUPPORTED_MESSAGE = gettext("This series is stored in a format the viewer cannot display");
export const UNDRAWABLE_MESSAGE = gettext(
  "This image could not be drawn. The other series can still be viewed; ask the patient for another copy if this one matters.",
);
const UNDECODABLE_MESSAGE = gettext("This image could not be decoded. Try another series, or ask the patient for another copy.");

// "TEST^VIEWER" (DICOM JSON person name) -> "TEST, VIEWER"
function personName(meta) {
  const name = meta?.["00100010"]?.Value?.[0];
  const text = typeof name === "string" ? name : name?.Alphabetic || "";
  const [family, given, middle] = text.split("^");
  return [family, [given, middle].filter(Boolean).join(" ")].filter(Boolean).join(", ");
}

// True when the viewport holds an image it can draw: a stack whose camera is made of numbers.
function drawable(viewport) {
  const camera = viewport.getCamera();
  const numbers = [camera.parallelScale, ...(camera.position || []), ...(camera.focalPoint || [])];
  return Boolean(viewport.getImageData()) && numbers.length > 1 && numbers.every(Number.isFinite);
}

export class Pane {
  constructor(viewer, node, index) {
    this.viewer = viewer;
    this.node = node;
    this.index = index;
    this.id = `${viewer.ids}-viewport-${index}`;
    const find = (selector) => node.querySelector(selector);
    this.ui = {
      element: find("[data-viewport]"),
      message: find("[data-message]"),
      position: find("[data-position]"),
      seriesLabel: find("[data-series-label]"),
      voi: find("[data-voi]"),
      measurement: find("[data-measurement]"),
      calibration: find("[data-calibration]"),
      patient: find("[data-patient]"),
    };
    this.imageIds = [];
    this.series = null;
    this.meta = null;
    this.windows = [];
    this.pendingScroll = 0;
    this.enable();
    this.listen();
  }

  get element() {
    return this.ui.element;
  }

  enable() {
    const engine = this.viewer.engine;
    engine.enableElement({
      viewportId: this.id,
      type: Enums.ViewportType.STACK,
      element: this.ui.element,
      defaultOptions: { background: [0, 0, 0] },
    });
    this.viewport = engine.getViewport(this.id);
    this.viewer.group?.addViewport(this.id, engine.id);
  }

  // After an image that could not be drawn: a new viewport, so nothing of the failed one (a
  // camera with NaN in it, a half-set stack) carries over to the next series.
  reset() {
    toolUtilities.cine.stopClip(this.ui.element);
    this.viewer.group?.removeViewports(this.viewer.engine.id, this.id);
    this.viewer.engine.disableElement(this.id);
    this.enable();
  }

  remove() {
    toolUtilities.cine.stopClip(this.ui.element);
    this.viewer.group?.removeViewports(this.viewer.engine.id, this.id);
    this.viewer.engine.disableElement(this.id);
    this.node.remove();
  }

  get active() {
    return this.viewer.active === this;
  }

  // A message instead of the image ("" hides it). The root's data-state (read by tests and the
  // page) follows the active pane: "loading", "rendered" or "message".
  say(text, final = true) {
    this.ui.message.textContent = text;
    this.ui.message.hidden = !text;
    if (text && final) this.state = "message";
  }

  set state(state) {
    this.node.dataset.state = state;
    if (this.active) this.viewer.root.dataset.state = state;
  }

  get current() {
    return this.viewport?.getCurrentImageIdIndex?.() ?? 0;
  }

  // The SOP Instance UID and frame number of the image on screen.
  currentImage() {
    const imageId = this.imageIds[this.current];
    const found = imageId && /\/instances\/([^/]+)\/frames\/(\d+)$/.exec(imageId);
    return found ? { imageId, sopUid: found[1], frame: Number(found[2]) } : null;
  }

  listen() {
    const element = this.ui.element;
    element.addEventListener(Enums.Events.STACK_NEW_IMAGE, () => {
      const index = this.current;
      this.ui.position.textContent = imagePosition(index + 1, this.imageIds.length);
      this.node.dataset.imageIndex = String(index);
      if (this.active) this.viewer.root.dataset.imageIndex = String(index);
      this.viewer.scrolled(this);
    });
    element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
      const voi = this.viewport.getProperties()?.voiRange;
      if (voi) {
        const width = Math.round(voi.upper - voi.lower);
        const center = Math.round((voi.upper + voi.lower) / 2);
        this.ui.voi.textContent = `W ${width} / L ${center}`;
      }
    });
    const failed = () => this.say(UNDECODABLE_MESSAGE);
    element.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, failed);
    element.addEventListener(Enums.Events.IMAGE_LOAD_FAILED, failed);
    // Wheel turns before the whole stack is in the viewport are kept and applied then.
    element.addEventListener(
      "wheel",
      (event) => {
        if (this.node.dataset.stack === "complete") return;
        event.preventDefault();
        this.pendingScroll += Math.sign(event.deltaY);
      },
      { passive: false },
    );
  }

  step(delta) {
    if (!this.imageIds.length) return;
    const next = Math.max(0, Math.min(this.imageIds.length - 1, this.current + delta));
    if (next !== this.current) this.viewport.setImageIdIndex(next);
  }

  // The image at ``fraction`` (0-1) of the stack: synchronised scrolling of unequal stacks.
  scrollToFraction(fraction) {
    if (this.imageIds.length < 2 || this.node.dataset.stack !== "complete") return;
    const target = Math.round(fraction * (this.imageIds.length - 1));
    if (target !== this.current) this.viewport.setImageIdIndex(target);
  }

  applyWindow(choice) {
    const chosen = choice.auto ? autoWindow(this.viewport.getCornerstoneImage?.()) : choice;
    if (!chosen) return;
    this.viewport.setProperties({ voiRange: voiRangeOf(chosen) });
    this.viewport.render();
  }

  // The image cannot be shown: say so, and start the next series from a fresh viewport.
  failed(text = UNDRAWABLE_MESSAGE) {
    this.imageIds = [];
    this.viewer.takeFirstAway();
    this.reset();
    this.say(text);
  }

  // The series' instances as [SOP Instance UID, number of frames], in display order, and the
  // first instance's metadata: from the page's JSON for the series it opens with, else asked.
  async describe(series) {
    const first = this.viewer.bootFirst(series);
    if (first) return { listing: first.instances, firstMeta: first.metadata, fallbackSyntax: undefined };
    const base = this.viewer.base;
    const found = await searchInstances(base, series);
    if (!found.length) return { listing: [], firstMeta: null };
    const listing = found.map((item) => [value(item, TAG.sopUid), Number(value(item, TAG.frames) || 1)]);
    const firstMeta = await loadInstanceMetadata(base, series, listing[0][0]);
    return { listing, firstMeta, fallbackSyntax: value(found[0], TAG.availableTransferSyntax) };
  }

  overlay(meta) {
    const lines = [
      personName(meta),
      dicomDate(value(meta, "00100030")) && interpolate(gettext("Born %(date)s"), { date: dicomDate(value(meta, "00100030")) }),
      dicomDate(value(meta, "00080020")) && interpolate(gettext("Study %(date)s"), { date: dicomDate(value(meta, "00080020")) }),
    ].filter(Boolean);
    this.ui.patient.textContent = "";
    for (const line of lines) {
      const span = document.createElement("span");
      span.textContent = line;
      this.ui.patient.append(span);
    }
  }

  async show(series) {
    const viewer = this.viewer;
    toolUtilities.cine.stopClip(this.ui.element);
    viewer.cineStopped(this);
    this.series = series;
    this.node.dataset.seriesDescription = series.description || "";
    if (this.active) viewer.seriesShown(this);
    this.ui.seriesLabel.textContent = seriesLabel(series);
    this.ui.measurement.textContent = "";
    this.ui.calibration.textContent = "";
    const handingOver = Boolean(viewer.first) && this.index === 0;
    if (!handingOver) {
      // The picture first.js painted stays up (with its position and window) until replaced.
      this.ui.position.textContent = "";
      this.state = "loading";
      this.say(gettext("Loading the images…"), false);
    }
    this.node.dataset.stack = "loading";
    const { listing, firstMeta, fallbackSyntax } = await this.describe(series);
    if (this.series !== series) return;
    if (!listing.length) {
      this.imageIds = [];
      this.say(gettext("This series has no images."));
      return;
    }
    const syntax = value(firstMeta, TAG.transferSyntax) || fallbackSyntax;
    if (syntax && !DECODABLE.has(syntax)) {
      this.imageIds = [];
      viewer.takeFirstAway();
      this.ui.element.hidden = true;
      const name = SYNTAX_NAMES[syntax] || `transfer syntax ${syntax}`;
      this.say(`${UNSUPPORTED_MESSAGE} (${name}). The other series can still be viewed; ask the patient for a copy in another format if this one matters.`);
      return;
    }
    this.ui.element.hidden = false;
    const origin = window.location.origin;
    const framesOf = (sopUid, count) => {
      const url = `${origin}${viewer.base}/studies/${series.studyUid}/series/${series.uid}/instances/${sopUid}/frames/`;
      return Array.from({ length: count }, (_, i) => `wadors:${url}${i + 1}`);
    };
    const perInstance = listing.map(([sopUid, frames]) => framesOf(sopUid, frames));
    const imageIds = perInstance.flat();
    const { meta, calibration } = prepareMetadata(firstMeta);
    for (const imageId of perInstance[0]) wadors.metaDataManager.add(imageId, meta);
    this.meta = firstMeta;
    this.imageIds = imageIds;
    this.overlay(firstMeta);
    getRenderingEngine(viewer.engine.id)?.resize(true, false);
    try {
      await this.viewport.setStack(perInstance[0], 0);
    } catch {
      if (this.series === series) this.failed();
      return;
    }
    if (this.series !== series) return;
    if (!drawable(this.viewport)) {
      this.failed();
      return;
    }
    // The file's own window first; without one, an automatic window from the pixels (Cornerstone's
    // default, the full range, leaves most MR and US images dark or washed out).
    this.windows = viewer.windowsFor(this);
    if (this.active) viewer.drawPresets();
    if (!fileWindows(firstMeta).length) this.applyWindow({ auto: true });
    this.ui.calibration.textContent = calibration;
    this.say("");
    this.ui.position.textContent = imagePosition(1, imageIds.length);
    this.viewport.render();
    if (this.index === 0) viewer.takeFirstAway(true);
    this.state = "rendered";

    if (listing.length > 1) {
      const all = await loadSeriesMetadata(viewer.base, series);
      if (this.series !== series) return;
      const bySop = new Map(all.map((item) => [value(item, TAG.sopUid), item]));
      listing.forEach(([sopUid], position) => {
        const item = bySop.get(sopUid);
        if (!item) return;
        const sound = prepareMetadata(item).meta;
        for (const imageId of perInstance[position]) wadors.metaDataManager.add(imageId, sound);
      });
      // Keep what the reader did to the first image meanwhile (window, zoom, pan).
      const properties = this.viewport.getProperties();
      const camera = this.viewport.getCamera();
      const index = Math.max(0, Math.min(imageIds.length - 1, this.current + this.pendingScroll));
      this.pendingScroll = 0;
      await this.viewport.setStack(imageIds, index);
      if (this.series !== series) return;
      this.viewport.setProperties(properties);
      this.viewport.setCamera(camera);
      this.viewport.render();
      this.ui.position.textContent = imagePosition(index + 1, imageIds.length);
    }
    this.pendingScroll = 0;
    // Fetch the rest of the stack in the background, so scrolling does not wait for the network.
    toolUtilities.stackPrefetch.enable(this.ui.element);
    this.node.dataset.stack = "complete";
    if (this.active) viewer.root.dataset.stack = "complete";
    viewer.marks.restore(this); // the saved measurements of these images, drawn again
    if (this.active) this.ui.element.focus?.();
  }
}
