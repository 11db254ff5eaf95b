// The case image viewer: Cornerstone3D stack viewports over our DICOMweb (WADO-RS frames in
// their stored transfer syntax, decoded in web workers by the DICOM image loader).
//
// Modules: pane.js (one viewport and its overlays), windowing.js (windows offered by modality),
// metadata.js (spacing and palettes fixed before Cornerstone sees them), tools.js (mouse tools,
// measurement labels), marks.js (measurements and key images saved with the case), keys.js
// (keyboard shortcuts), series_list.js, dicomweb.js, first.js (the first picture, painted early).
import { RenderingEngine, eventTarget, init as coreInit } from "@cornerstonejs/core";
import { init as dicomImageLoaderInit } from "@cornerstonejs/dicom-image-loader";
import { Enums as ToolEnums, annotation, init as toolsInit, utilities as toolUtilities } from "@cornerstonejs/tools";

import { gettext, interpolate } from "../i18n.js";
import { loadStudies } from "./dicomweb.js";
import { listenToKeys, renderShortcuts } from "./keys.js";
import { Marks } from "./marks.js";
import { Pane } from "./pane.js";
import { renderSeriesList, seriesLabel } from "./series_list.js";
import { MEASURING, TOOLS, activateTool, createToolGroup, measurementLabel, registerTools } from "./tools.js";
import { windowsFor } from "./windowing.js";

export { UNSUPPORTED_MESSAGE, UNDRAWABLE_MESSAGE } from "./pane.js";

const LAYOUTS = { "1x1": 1, "1x2": 2, "2x2": 4 };
const FRAME_RATES = [5, 10, 15, 20, 30];

let initialised;
function initCornerstone(wasmBase) {
  initialised ??= (async () => {
    await coreInit();
    dicomImageLoaderInit({
      maxWebWorkers: Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2))),
      wasmBasePath: wasmBase,
    });
    toolsInit();
    registerTools();
  })();
  return initialised;
}

let viewerCount = 0;

class Viewer {
  constructor(root, { boot, first, list }) {
    this.root = root;
    this.boot = boot;
    this.first = first; // the picture first.js painted, until Cornerstone shows the same image
    this.list = list;
    // The case's DICOMweb root, e.g. /dicomweb/cases/<case id> (its QIDO-RS URL minus /studies).
    this.base = boot?.base || root.dataset.studiesUrl.replace(/\/studies$/, "");
    this.ids = `sr-viewer-${++viewerCount}`;
    this.stage = root.querySelector("[data-stage]");
    this.ui = {
      series: root.querySelector("[data-series-list]"),
      tools: root.querySelector("[data-tools]"),
      presets: root.querySelector("[data-presets]"),
      view: root.querySelector("[data-view]"),
      cine: root.querySelector("[data-cine]"),
      fps: root.querySelector("[data-fps]"),
      layouts: root.querySelector("[data-layouts]"),
      sync: root.querySelector("[data-sync]"),
      keyImage: root.querySelector("[data-key-image]"),
    };
    this.panes = [];
    this.all = [];
    this.activeTool = "wl";
    this.sync = false;
    this.marks = new Marks(this, root);
  }

  async mount() {
    await initCornerstone(this.root.dataset.wasmBase);
    this.engine = new RenderingEngine(`${this.ids}-engine`);
    this.group = createToolGroup(`${this.ids}-tools`);
    // New panes are copies of the page's pane as it was written (first.js may already have put
    // its picture in the viewport: the copy's viewport starts empty).
    this.template = this.stage.querySelector("[data-pane]").cloneNode(true);
    this.template.querySelector("[data-viewport]").textContent = "";
    for (const text of this.template.querySelectorAll("[data-position], [data-voi], [data-series-label], [data-patient]")) {
      text.textContent = "";
    }
    this.addPane(this.stage.querySelector("[data-pane]"));
    this.active = this.panes[0];
    this.setUpToolbar();
    listenToKeys(this, this.root);
    renderShortcuts(this.root.querySelector("[data-shortcuts]"), this);
    this.listenToMeasurements();
    window.addEventListener("resize", () => this.engine.resize(true, true));
  }

  addPane(node) {
    const pane = new Pane(this, node, this.panes.length);
    node.addEventListener("pointerdown", () => this.activate(pane), true);
    node.addEventListener("focusin", () => this.activate(pane));
    this.panes.push(pane);
    return pane;
  }

  activate(pane) {
    if (this.active === pane) return;
    this.active = pane;
    for (const other of this.panes) other.node.setAttribute("aria-current", String(other === pane));
    this.root.dataset.state = pane.node.dataset.state || "";
    this.root.dataset.stack = pane.node.dataset.stack || "";
    if (pane.series) this.seriesShown(pane);
    this.drawPresets();
  }

  // --- series -------------------------------------------------------------------------------

  seriesByUid(uid) {
    return this.all.find((series) => series.uid === uid);
  }

  // The page's JSON for the series the viewer opens with (used once: later visits ask afresh).
  bootFirst(series) {
    const first = this.boot?.first;
    if (!first || first.seriesUid !== series.uid || !first.metadata) return null;
    this.boot = { ...this.boot, first: null };
    return first;
  }

  takeFirstAway(nextFrame = false) {
    const standIn = this.first;
    this.first = null;
    if (!standIn) return;
    if (nextFrame) requestAnimationFrame(() => standIn.remove());
    else standIn.remove();
  }

  seriesShown(pane) {
    for (const button of this.ui.series.querySelectorAll("button")) {
      button.setAttribute("aria-current", String(button.dataset.seriesUid === pane.series.uid));
    }
    this.root.dataset.seriesDescription = pane.series.description || "";
    this.drawPresets();
  }

  show(pane, series) {
    this.activate(pane);
    return pane.show(series).catch((error) => pane.say(error.message || String(error)));
  }

  async openImage(seriesUid, sopUid, frame) {
    const series = this.seriesByUid(seriesUid);
    if (!series) return;
    const pane = this.active;
    if (pane.series !== series) await this.show(pane, series);
    const index = pane.imageIds.findIndex((id) => id.endsWith(`/instances/${sopUid}/frames/${frame}`));
    if (index >= 0) pane.viewport.setImageIdIndex(index);
  }

  // --- windows, view, cine --------------------------------------------------------------------

  windowsFor(pane) {
    return windowsFor(pane.series?.modality, pane.meta);
  }

  drawPresets() {
    const pane = this.active;
    this.ui.presets.textContent = "";
    for (const choice of pane?.windows || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.preset = choice.key;
      button.textContent = choice.label;
      if (!choice.auto) button.title = interpolate(gettext("Window %(width)s, level %(center)s"), { width: choice.width, center: choice.center });
      button.addEventListener("click", () => pane.applyWindow(choice));
      this.ui.presets.append(button);
    }
  }

  view(action) {
    const viewport = this.active?.viewport;
    if (!viewport || !this.active.imageIds.length) return;
    const presentation = viewport.getViewPresentation?.() || {};
    if (action === "invert") viewport.setProperties({ invert: !viewport.getProperties().invert });
    if (action === "rotate") viewport.setViewPresentation({ rotation: ((presentation.rotation || 0) + 90) % 360 });
    if (action === "flip-h") viewport.setViewPresentation({ flipHorizontal: !presentation.flipHorizontal });
    if (action === "flip-v") viewport.setViewPresentation({ flipVertical: !presentation.flipVertical });
    if (action === "reset") {
      annotation.state.removeAllAnnotations();
      viewport.resetProperties();
      viewport.resetCamera();
      this.marks.restoreAll(); // what is saved with the case stays on screen
      this.active.ui.measurement.textContent = "";
      if (!this.active.windows.some((w) => !w.auto && w.key.startsWith("file"))) this.active.applyWindow({ auto: true });
    }
    viewport.render();
    const now = viewport.getViewPresentation?.() || {};
    this.active.node.dataset.view = [
      viewport.getProperties().invert ? "inverted" : "",
      now.rotation ? `rotated-${Math.round(now.rotation)}` : "",
      now.flipHorizontal ? "flipped-h" : "",
      now.flipVertical ? "flipped-v" : "",
    ]
      .filter(Boolean)
      .join(" ");
  }

  toggleCine() {
    const pane = this.active;
    if (!pane || pane.imageIds.length < 2) return;
    if (pane.node.dataset.cine === "playing") {
      toolUtilities.cine.stopClip(pane.element);
      this.cineStopped(pane);
      return;
    }
    toolUtilities.cine.playClip(pane.element, { framesPerSecond: Number(this.ui.fps.value) || 10, loop: true });
    pane.node.dataset.cine = "playing";
    this.root.dataset.cine = "playing";
    this.ui.cine.textContent = gettext("Stop");
    this.ui.cine.setAttribute("aria-pressed", "true");
  }

  cineStopped(pane) {
    delete pane.node.dataset.cine;
    if (this.panes.some((other) => other.node.dataset.cine === "playing")) return;
    delete this.root.dataset.cine;
    this.ui.cine.textContent = gettext("Play");
    this.ui.cine.setAttribute("aria-pressed", "false");
  }

  // --- layouts and synchronised scrolling ------------------------------------------------------

  setLayout(name) {
    const count = LAYOUTS[name];
    if (!count) return;
    while (this.panes.length > count) this.panes.pop().remove();
    if (!this.panes.includes(this.active)) this.activate(this.panes[0]);
    const opened = [];
    while (this.panes.length < count) {
      const node = this.template.cloneNode(true);
      node.setAttribute("aria-current", "false");
      this.stage.append(node);
      opened.push(this.addPane(node));
    }
    this.stage.dataset.layout = name;
    this.root.dataset.layout = name;
    for (const button of this.ui.layouts.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.layout === name));
    }
    this.engine.resize(true, true);
    // New panes open the series after the ones on screen (the next series, or a prior study).
    const showing = new Set(this.panes.map((pane) => pane.series).filter(Boolean));
    const rest = this.all.filter((series) => series.count && !showing.has(series));
    opened.forEach((pane, i) => {
      const series = rest[i] || this.active.series;
      if (series) pane.show(series).catch((error) => pane.say(error.message || String(error)));
    });
  }

  toggleSync() {
    this.sync = !this.sync;
    this.ui.sync.setAttribute("aria-pressed", String(this.sync));
    this.root.dataset.sync = String(this.sync);
  }

  // The active pane moved to another image: the others follow, at the same place in their stacks.
  scrolled(pane) {
    if (!this.sync || pane !== this.active || this.panes.length < 2 || pane.imageIds.length < 2) return;
    const fraction = pane.current / (pane.imageIds.length - 1);
    for (const other of this.panes) if (other !== pane) other.scrollToFraction(fraction);
  }

  // --- tools, measurements, key images ------------------------------------------------------

  activateTool(key) {
    activateTool(this.group, this.activeTool, key);
    this.activeTool = key;
    for (const button of this.ui.tools.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === key));
    }
  }

  listenToMeasurements() {
    const shown = (event) => {
      const found = event.detail?.annotation;
      const kind = MEASURING.get(found?.metadata?.toolName);
      if (!kind) return null;
      const stats = found.data?.cachedStats && Object.values(found.data.cachedStats)[0];
      const label = measurementLabel(found.metadata.toolName, stats);
      if (label && this.active) this.active.ui.measurement.textContent = label;
      return { found, kind, label };
    };
    // Annotation events are sent on Cornerstone's global event target, not on the element.
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, shown);
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, (event) => {
      const done = shown(event);
      // Statistics are computed on the render after completion: save once they are there.
      if (done) requestAnimationFrame(() => requestAnimationFrame(() => {
        const stats = done.found.data?.cachedStats && Object.values(done.found.data.cachedStats)[0];
        const label = measurementLabel(done.found.metadata.toolName, stats) || done.label;
        if (label && this.active) this.active.ui.measurement.textContent = label;
        this.marks.saveMeasurement(done.kind, done.found, label);
      }));
    });
  }

  markKeyImage() {
    if (this.active?.imageIds.length) this.marks.saveKeyImage(this.active);
  }

  setUpToolbar() {
    for (const [key, label, , shortcut] of TOOLS) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.tool = key;
      button.textContent = label;
      button.title = `${label} (${shortcut.toUpperCase()})`;
      button.setAttribute("aria-pressed", String(key === this.activeTool));
      button.addEventListener("click", () => this.activateTool(key));
      this.ui.tools.append(button);
    }
    for (const button of this.ui.view.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", () => this.view(button.dataset.action));
    }
    for (const rate of FRAME_RATES) {
      const option = document.createElement("option");
      option.value = String(rate);
      option.textContent = `${rate} fps`;
      option.selected = rate === 10;
      this.ui.fps.append(option);
    }
    this.ui.cine.addEventListener("click", () => this.toggleCine());
    this.ui.fps.addEventListener("change", () => {
      const pane = this.active;
      if (pane?.node.dataset.cine !== "playing") return;
      toolUtilities.cine.stopClip(pane.element);
      pane.node.dataset.cine = "";
      this.toggleCine();
    });
    for (const button of this.ui.layouts.querySelectorAll("button[data-layout]")) {
      button.addEventListener("click", () => this.setLayout(button.dataset.layout));
    }
    this.ui.sync.addEventListener("click", () => this.toggleSync());
    if (this.marks.enabled) this.ui.keyImage.addEventListener("click", () => this.markKeyImage());
    else this.ui.keyImage.hidden = true;
  }
}

// Mounts the full viewer on ``root``. ``boot`` is the page's JSON (imaging/viewer/selectors.py):
// the studies and series, and the first series' instances and first metadata, so nothing has
// to be asked before the first frame. ``first`` is the picture first.js already painted (or
// null), taken away once Cornerstone shows the same image. ``list`` is the series list the
// entry drew (or null: drawn here from QIDO-RS answers).
export async function mountViewer(root, { boot = null, first = null, list = null } = {}) {
  const viewer = new Viewer(root, { boot, first, list });
  const firstPane = root.querySelector("[data-pane]");
  try {
    if (!first) {
      root.dataset.state = "loading";
      firstPane.querySelector("[data-message]").textContent = gettext("Loading the images…");
    }
    const studiesLoaded = boot ? Promise.resolve(boot.studies) : loadStudies(viewer.base);
    await viewer.mount();
    viewer.marks.load();
    const studies = await studiesLoaded;
    viewer.all = studies.flatMap((study) => study.series);
    if (!viewer.all.length) {
      viewer.active.say(gettext("No images have been received for this case yet."));
      return;
    }
    const drawn = list || renderSeriesList(viewer.ui.series, viewer.all, viewer.base);
    drawn.loadThumbnails();
    viewer.ui.series.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-series-uid]");
      const series =
        button && viewer.all.find((s) => s.uid === button.dataset.seriesUid && s.studyUid === button.dataset.studyUid);
      if (series) viewer.show(viewer.active, series);
    });
    const opening =
      viewer.all.find((s) => s.uid === boot?.first?.seriesUid) || viewer.all.find((s) => s.count) || viewer.all[0];
    root.querySelector("[data-series-label]").textContent = seriesLabel(opening);
    await viewer.show(viewer.active, opening);
  } catch (error) {
    viewer.takeFirstAway();
    const message = firstPane.querySelector("[data-message]");
    message.textContent = error.message || String(error);
    message.hidden = false;
    root.dataset.state = "message";
  }
}
