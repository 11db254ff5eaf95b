// The case image viewer: Cornerstone3D stack viewport over our DICOMweb (WADO-RS frames in
// their stored transfer syntax, decoded in web workers by the DICOM image loader).
import {
  Enums,
  RenderingEngine,
  eventTarget,
  init as coreInit,
  getRenderingEngine,
} from "@cornerstonejs/core";
import { init as dicomImageLoaderInit, wadors } from "@cornerstonejs/dicom-image-loader";
import {
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  annotation,
  init as toolsInit,
  utilities as toolUtilities,
} from "@cornerstonejs/tools";

import { TAG, loadInstanceMetadata, loadSeriesMetadata, loadStudies, searchInstances, value } from "./dicomweb.js";
import { renderSeriesList, seriesLabel } from "./series_list.js";

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
export const UNSUPPORTED_MESSAGE =
  "This series is stored in a format the viewer cannot display";

// Window presets (centre / width in Hounsfield units), as radiology workstations name them.
export const PRESETS = [
  ["Brain", 40, 80],
  ["Soft tissue", 40, 400],
  ["Abdomen", 60, 400],
  ["Lung", -600, 1500],
  ["Bone", 400, 1800],
];

const TOOLS = [
  ["wl", "Window/level", WindowLevelTool.toolName],
  ["pan", "Pan", PanTool.toolName],
  ["zoom", "Zoom", ZoomTool.toolName],
  ["scroll", "Scroll", StackScrollTool.toolName],
  ["length", "Measure", LengthTool.toolName],
];

let initialised;
function initCornerstone(wasmBase) {
  initialised ??= (async () => {
    await coreInit();
    dicomImageLoaderInit({
      maxWebWorkers: Math.max(1, Math.min(4, Math.floor((navigator.hardwareConcurrency || 2) / 2))),
      wasmBasePath: wasmBase,
    });
    toolsInit();
    for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool]) addTool(tool);
  })();
  return initialised;
}

let viewerCount = 0;

// Mounts the full viewer on ``root``. ``boot`` is the page's JSON (imaging/viewer/selectors.py):
// the studies and series, and the first series' instances and first metadata, so nothing has
// to be asked before the first frame. ``first`` is the picture first.js already painted (or
// null), taken away once Cornerstone shows the same image. ``list`` is the series list the
// entry drew (or null: drawn here from QIDO-RS answers).
export async function mountViewer(root, { boot = null, first = null, list = null } = {}) {
  // The case's DICOMweb root, e.g. /dicomweb/cases/<case id> (its QIDO-RS URL minus /studies).
  const base = boot?.base || root.dataset.studiesUrl.replace(/\/studies$/, "");
  const ids = `sr-viewer-${++viewerCount}`;
  const ui = {
    series: root.querySelector("[data-series-list]"),
    element: root.querySelector("[data-viewport]"),
    message: root.querySelector("[data-message]"),
    position: root.querySelector("[data-position]"),
    seriesLabel: root.querySelector("[data-series-label]"),
    voi: root.querySelector("[data-voi]"),
    measurement: root.querySelector("[data-measurement]"),
    tools: root.querySelector("[data-tools]"),
    presets: root.querySelector("[data-presets]"),
    reset: root.querySelector("[data-reset]"),
  };
  const state = { viewport: null, imageIds: [], current: null, activeTool: "wl", boot, first, pendingScroll: 0 };

  // data-state: "loading", then "rendered" (an image is on screen and the tools work) or
  // "message" (an explanation instead of an image); tests and the page's own script read it.
  // data-first-image="painted" (first.js) comes earlier, when only the picture is up.
  const say = (text, final = true) => {
    ui.message.textContent = text;
    ui.message.hidden = !text;
    if (text && final) root.dataset.state = "message";
  };
  // Wheel turns before the whole stack is in the viewport are kept and applied then.
  const early = (event) => {
    if (root.dataset.stack === "complete") return;
    event.preventDefault();
    state.pendingScroll += Math.sign(event.deltaY);
  };
  ui.element.addEventListener("wheel", early, { passive: false });

  try {
    if (!first) {
      root.dataset.state = "loading";
      say("Loading the images…", false);
    }
    const studiesLoaded = boot ? Promise.resolve(boot.studies) : loadStudies(base);
    await initCornerstone(root.dataset.wasmBase);
    const engine = new RenderingEngine(`${ids}-engine`);
    engine.enableElement({
      viewportId: `${ids}-viewport`,
      type: Enums.ViewportType.STACK,
      element: ui.element,
      defaultOptions: { background: [0, 0, 0] },
    });
    state.viewport = engine.getViewport(`${ids}-viewport`);
    setUpTools(`${ids}-tools`, state, ui);
    setUpEvents(state, ui, root, say);
    setUpKeys(state, root);
    setUpToolbar(state, ui);

    const studies = await studiesLoaded;
    const all = studies.flatMap((study) => study.series);
    if (!all.length) {
      say("No images have been received for this case yet.");
      return;
    }
    const drawn = list || renderSeriesList(ui.series, all, base);
    drawn.loadThumbnails();
    ui.series.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-series-uid]");
      const series = button && all.find((s) => s.uid === button.dataset.seriesUid && s.studyUid === button.dataset.studyUid);
      if (series) showSeries(series, state, ui, base, root, say).catch((error) => say(error.message || String(error)));
    });
    const opening = all.find((s) => s.uid === boot?.first?.seriesUid) || all.find((s) => s.count) || all[0];
    await showSeries(opening, state, ui, base, root, say);
  } catch (error) {
    state.first?.remove();
    say(error.message || String(error));
  }
  window.addEventListener("resize", () => getRenderingEngine(`${ids}-engine`)?.resize(true, true));
}

function setUpTools(groupId, state, ui) {
  const group = ToolGroupManager.createToolGroup(groupId);
  for (const [, , name] of TOOLS) group.addTool(name);
  group.addViewport(state.viewport.id, state.viewport.renderingEngineId);
  const { MouseBindings } = ToolEnums;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  group.setToolPassive(LengthTool.toolName);
  state.group = group;
  ui.element.addEventListener("contextmenu", (event) => event.preventDefault());
}

// The left button does what the toolbar says; the wheel always scrolls, the middle button pans
// and the right button zooms, as in most radiology viewers.
function activate(state, ui, key) {
  const { MouseBindings } = ToolEnums;
  const name = TOOLS.find(([k]) => k === key)[2];
  const previous = TOOLS.find(([k]) => k === state.activeTool)[2];
  const group = state.group;
  if (previous === StackScrollTool.toolName) {
    group.setToolActive(previous, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  } else if (previous === PanTool.toolName) {
    group.setToolActive(previous, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  } else if (previous === ZoomTool.toolName) {
    group.setToolActive(previous, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  } else {
    group.setToolPassive(previous);
  }
  const bindings = [{ mouseButton: MouseBindings.Primary }];
  if (name === StackScrollTool.toolName) bindings.push({ mouseButton: MouseBindings.Wheel });
  if (name === PanTool.toolName) bindings.push({ mouseButton: MouseBindings.Auxiliary });
  if (name === ZoomTool.toolName) bindings.push({ mouseButton: MouseBindings.Secondary });
  group.setToolActive(name, { bindings });
  state.activeTool = key;
  for (const button of ui.tools.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.tool === key));
  }
}

function setUpToolbar(state, ui) {
  for (const [key, label] of TOOLS) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.tool = key;
    button.textContent = label;
    button.setAttribute("aria-pressed", String(key === state.activeTool));
    button.addEventListener("click", () => activate(state, ui, key));
    ui.tools.append(button);
  }
  for (const [label, center, width] of PRESETS) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.preset = label.toLowerCase();
    button.textContent = label;
    button.title = `Window ${width}, level ${center}`;
    button.addEventListener("click", () => {
      state.viewport.setProperties({ voiRange: { lower: center - width / 2, upper: center + width / 2 } });
      state.viewport.render();
    });
    ui.presets.append(button);
  }
  ui.reset.addEventListener("click", () => {
    annotation.state.removeAllAnnotations();
    state.viewport.resetProperties();
    state.viewport.resetCamera();
    state.viewport.render();
    ui.measurement.textContent = "";
  });
}

function step(state, delta) {
  const viewport = state.viewport;
  if (!viewport || !state.imageIds.length) return;
  const next = Math.max(0, Math.min(state.imageIds.length - 1, viewport.getCurrentImageIdIndex() + delta));
  viewport.setImageIdIndex(next);
}

function setUpKeys(state, root) {
  root.addEventListener("keydown", (event) => {
    const page = Math.max(1, Math.round(state.imageIds.length / 10));
    const moves = {
      ArrowDown: 1,
      ArrowRight: 1,
      ArrowUp: -1,
      ArrowLeft: -1,
      PageDown: page,
      PageUp: -page,
      Home: -Infinity,
      End: Infinity,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const delta = moves[event.key];
    step(state, Number.isFinite(delta) ? delta : delta > 0 ? state.imageIds.length : -state.imageIds.length);
  });
}

function setUpEvents(state, ui, root, say) {
  const element = ui.element;
  element.addEventListener(Enums.Events.STACK_NEW_IMAGE, () => {
    const index = state.viewport.getCurrentImageIdIndex();
    ui.position.textContent = `Image ${index + 1} / ${state.imageIds.length}`;
    root.dataset.imageIndex = String(index);
  });
  element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
    const voi = state.viewport.getProperties()?.voiRange;
    if (voi) {
      const width = Math.round(voi.upper - voi.lower);
      const center = Math.round((voi.upper + voi.lower) / 2);
      ui.voi.textContent = `W ${width} / L ${center}`;
    }
  });
  const failed = () => say("This image could not be decoded. Try another series, or ask the patient for another copy.");
  element.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, failed);
  element.addEventListener(Enums.Events.IMAGE_LOAD_FAILED, failed);
  const measured = (event) => {
    const stats = event.detail?.annotation?.data?.cachedStats;
    const first = stats && Object.values(stats)[0];
    if (first && Number.isFinite(first.length)) {
      ui.measurement.textContent = `Length: ${first.length.toFixed(1)} ${first.unit || "mm"}`;
    }
  };
  // Annotation events are sent on Cornerstone's global event target, not on the element.
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, measured);
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, measured);
}

// The series' instances as [SOP Instance UID, number of frames], in display order, and the first
// instance's metadata: from the page's JSON for the series it opens with, else two requests.
async function describeSeries(series, state, base) {
  const boot = state.boot?.first;
  if (boot && boot.seriesUid === series.uid && boot.metadata) {
    state.boot = { ...state.boot, first: null }; // used once: later visits ask the server afresh
    return { listing: boot.instances, firstMeta: boot.metadata, fallbackSyntax: undefined };
  }
  const found = await searchInstances(base, series);
  if (!found.length) return { listing: [], firstMeta: null };
  const listing = found.map((item) => [value(item, TAG.sopUid), Number(value(item, TAG.frames) || 1)]);
  const firstMeta = await loadInstanceMetadata(base, series, listing[0][0]);
  return { listing, firstMeta, fallbackSyntax: value(found[0], TAG.availableTransferSyntax) };
}

async function showSeries(series, state, ui, base, root, say) {
  state.current = series;
  for (const button of ui.series.querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.seriesUid === series.uid));
  }
  ui.seriesLabel.textContent = seriesLabel(series);
  ui.measurement.textContent = "";
  const handingOver = Boolean(state.first);
  if (!handingOver) {
    // The picture first.js painted stays up (with its position and window) until replaced.
    ui.position.textContent = "";
    root.dataset.state = "loading";
    say("Loading the images…", false);
  }
  root.dataset.stack = "loading";
  // The first image needs only its own instance's metadata: show it as soon as that is known,
  // then describe the rest of the series (one request) and hand the viewport the whole stack.
  const { listing, firstMeta, fallbackSyntax } = await describeSeries(series, state, base);
  if (state.current !== series) return;
  if (!listing.length) {
    say("This series has no images.");
    return;
  }
  const syntax = value(firstMeta, TAG.transferSyntax) || fallbackSyntax;
  if (syntax && !DECODABLE.has(syntax)) {
    state.imageIds = [];
    state.first?.remove();
    state.first = null;
    ui.element.hidden = true;
    const name = SYNTAX_NAMES[syntax] || `transfer syntax ${syntax}`;
    say(`${UNSUPPORTED_MESSAGE} (${name}). The other series can still be viewed; ask the patient for a copy in another format if this one matters.`);
    return;
  }
  ui.element.hidden = false;
  const origin = window.location.origin;
  const framesOf = (sopUid, count) => {
    const url = `${origin}${base}/studies/${series.studyUid}/series/${series.uid}/instances/${sopUid}/frames/`;
    return Array.from({ length: count }, (_, i) => `wadors:${url}${i + 1}`);
  };
  const perInstance = listing.map(([sopUid, frames]) => framesOf(sopUid, frames));
  const imageIds = perInstance.flat();
  for (const imageId of perInstance[0]) wadors.metaDataManager.add(imageId, firstMeta);
  state.imageIds = imageIds;
  annotation.state.removeAllAnnotations();
  getRenderingEngine(state.viewport.renderingEngineId)?.resize(true, false);
  await state.viewport.setStack(perInstance[0], 0);
  if (state.current !== series) return;
  say("");
  ui.position.textContent = `Image 1 / ${imageIds.length}`;
  state.viewport.render();
  // Cornerstone now shows what first.js painted: take the stand-in away on the next frame, when
  // the viewport's own canvas holds the image.
  if (state.first) {
    const standIn = state.first;
    state.first = null;
    requestAnimationFrame(() => standIn.remove());
  }
  root.dataset.state = "rendered";

  if (listing.length > 1) {
    const all = await loadSeriesMetadata(base, series);
    if (state.current !== series) return;
    const bySop = new Map(all.map((meta) => [value(meta, TAG.sopUid), meta]));
    listing.forEach(([sopUid], position) => {
      const meta = bySop.get(sopUid);
      if (meta) for (const imageId of perInstance[position]) wadors.metaDataManager.add(imageId, meta);
    });
    // Keep what the reader did to the first image meanwhile (window, zoom, pan).
    const properties = state.viewport.getProperties();
    const camera = state.viewport.getCamera();
    // Wheel turns made before the stack was complete are applied now.
    const index = Math.max(0, Math.min(imageIds.length - 1, state.viewport.getCurrentImageIdIndex() + state.pendingScroll));
    state.pendingScroll = 0;
    await state.viewport.setStack(imageIds, index);
    if (state.current !== series) return;
    state.viewport.setProperties(properties);
    state.viewport.setCamera(camera);
    state.viewport.render();
    ui.position.textContent = `Image ${index + 1} / ${imageIds.length}`;
  }
  state.pendingScroll = 0;
  // Fetch the rest of the stack in the background, so scrolling does not wait for the network.
  toolUtilities.stackPrefetch.enable(ui.element);
  root.dataset.stack = "complete";
  ui.element.focus?.();
}
