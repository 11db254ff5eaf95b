// The first image, painted without Cornerstone: a 2D canvas, the page's own metadata (DICOM
// JSON rendered into the page by imaging/viewer/selectors.py) and one raw frame that an inline
// script in imaging/templates/imaging/viewer/viewer.html started fetching while the page was
// parsed. This module is a few KB, so the picture is up long before the full viewer (Cornerstone3D,
// ~4 MB of JavaScript to parse, WebGL, decode workers) is; app.js takes over when it is ready and
// removes this canvas once its own rendering of the same image is on screen.
//
// Pixels are shown the way Cornerstone shows them by default: modality LUT (rescale slope and
// intercept), then the first window of the file (or the image's range when it has none),
// MONOCHROME1 inverted, scaled to fit with smooth interpolation. Anything unusual (palette
// colour, YBR stored uncompressed, floats, bit depths other than 8/16/32) is left to Cornerstone.
import { value } from "./dicomweb.js";

const PIXEL = {
  rows: "00280010",
  columns: "00280011",
  samples: "00280002",
  photometric: "00280004",
  planar: "00280006",
  bitsAllocated: "00280100",
  bitsStored: "00280101",
  signed: "00280103",
  windowCenter: "00281050",
  windowWidth: "00281051",
  intercept: "00281052",
  slope: "00281053",
};

// The single part of a multipart/related answer (one frame), as an ArrayBuffer of its own (so
// typed arrays over it are aligned).
export function firstPart(contentType, body) {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType || "")?.[1];
  if (!boundary) return null;
  const bytes = new Uint8Array(body);
  let start = -1;
  for (let i = 0; i + 3 < bytes.length && i < 4096; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      start = i + 4;
      break;
    }
  }
  const end = bytes.length - (`\r\n--${boundary}--\r\n`.length);
  if (start < 0 || end < start) return null;
  return body.slice(start, end);
}

function samplesOf(buffer, bits, signed) {
  if (bits === 8) return signed ? new Int8Array(buffer) : new Uint8Array(buffer);
  if (bits === 16) return signed ? new Int16Array(buffer, 0, buffer.byteLength >> 1) : new Uint16Array(buffer, 0, buffer.byteLength >> 1);
  if (bits === 32) return signed ? new Int32Array(buffer, 0, buffer.byteLength >> 2) : new Uint32Array(buffer, 0, buffer.byteLength >> 2);
  return null;
}

// RGBA pixels of one raw little-endian frame, or null if this is for Cornerstone to show.
export function framePixels(meta, buffer, decoded) {
  const rows = Number(value(meta, PIXEL.rows));
  const columns = Number(value(meta, PIXEL.columns));
  const samplesPerPixel = Number(value(meta, PIXEL.samples) || 1);
  const photometric = String(value(meta, PIXEL.photometric) || "MONOCHROME2").trim();
  const bits = Number(value(meta, PIXEL.bitsAllocated));
  const stored = Number(value(meta, PIXEL.bitsStored) || bits);
  const signed = Number(value(meta, PIXEL.signed) || 0) === 1;
  const count = rows * columns;
  if (!(count > 0)) return null;
  const out = new Uint8ClampedArray(count * 4);

  if (samplesPerPixel === 3) {
    // Frames decoded on the server come back interleaved RGB whatever the file said (YBR JPEGs
    // are converted by the decoder); uncompressed files are shown here only if they are RGB.
    if (bits !== 8 || (!decoded && photometric !== "RGB")) return null;
    const data = new Uint8Array(buffer);
    if (data.length < count * 3) return null;
    const planar = !decoded && Number(value(meta, PIXEL.planar) || 0) === 1;
    for (let i = 0; i < count; i++) {
      const o = i * 4;
      out[o] = planar ? data[i] : data[i * 3];
      out[o + 1] = planar ? data[count + i] : data[i * 3 + 1];
      out[o + 2] = planar ? data[2 * count + i] : data[i * 3 + 2];
      out[o + 3] = 255;
    }
    return { rows, columns, rgba: out };
  }
  if (samplesPerPixel !== 1 || !photometric.startsWith("MONOCHROME")) return null;
  const raw = samplesOf(buffer, bits, signed);
  if (!raw || raw.length < count) return null;
  const slope = Number(value(meta, PIXEL.slope) ?? 1) || 1;
  const intercept = Number(value(meta, PIXEL.intercept) ?? 0) || 0;
  // Pixels stored in fewer bits than allocated: keep the stored bits (sign-extended if signed).
  const shift = stored < bits && bits <= 32 ? 32 - stored : 0;
  const sample = (v) => (shift ? (signed ? (v << shift) >> shift : (v << shift) >>> shift) : v);
  let center = Number(value(meta, PIXEL.windowCenter));
  let width = Number(value(meta, PIXEL.windowWidth));
  if (!(width > 0) || !Number.isFinite(center)) {
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < count; i++) {
      const v = sample(raw[i]) * slope + intercept;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    center = (low + high) / 2;
    width = Math.max(high - low, 1);
  }
  const low = center - width / 2;
  const scale = 255 / width;
  const invert = photometric === "MONOCHROME1";
  for (let i = 0; i < count; i++) {
    let grey = ((sample(raw[i]) * slope + intercept - low) * scale) | 0;
    grey = grey < 0 ? 0 : grey > 255 ? 255 : grey;
    if (invert) grey = 255 - grey;
    const o = i * 4;
    out[o] = out[o + 1] = out[o + 2] = grey;
    out[o + 3] = 255;
  }
  return { rows, columns, rgba: out, center, width };
}

// Paints the first image of ``boot.first`` into the viewport. Resolves to a handle whose
// ``remove()`` takes the picture away (app.js calls it once Cornerstone shows the image), or to
// null when there is nothing to paint here (no images, a format only Cornerstone decodes, an
// error: app.js then shows the image or the explanation itself).
export async function paintFirstImage(root, boot) {
  const first = boot?.first;
  if (!first?.frameUrl) return null;
  const pending = window.srViewerFirstFrames?.[first.frameUrl];
  let answer = pending ? await pending : null;
  if (!answer) {
    // The inline fetch is missing (or failed): ask once more, the same way.
    try {
      const response = await fetch(first.frameUrl, { headers: { Accept: first.accept }, credentials: "same-origin" });
      if (!response.ok) return null;
      answer = { type: response.headers.get("Content-Type") || "", body: await response.arrayBuffer() };
    } catch {
      return null;
    }
  }
  const part = firstPart(answer.type, answer.body);
  const pixels = part && framePixels(first.metadata, part, first.decoded);
  if (!pixels || root.dataset.state === "rendered") return null;

  const canvas = document.createElement("canvas");
  canvas.className = "sr-viewer__first";
  canvas.width = pixels.columns;
  canvas.height = pixels.rows;
  canvas.setAttribute("aria-hidden", "true");
  canvas.getContext("2d").putImageData(new ImageData(pixels.rgba, pixels.columns, pixels.rows), 0, 0);
  const viewport = root.querySelector("[data-viewport]");
  viewport.prepend(canvas);
  const message = root.querySelector("[data-message]");
  message.hidden = true;
  const total = first.instances.reduce((sum, [, frames]) => sum + frames, 0);
  root.querySelector("[data-position]").textContent = `Image 1 / ${total}`;
  if (pixels.width) {
    root.querySelector("[data-voi]").textContent = `W ${Math.round(pixels.width)} / L ${Math.round(pixels.center)}`;
  }
  root.dataset.firstImage = "painted";
  return {
    sopUid: first.instances[0][0],
    remove: () => canvas.remove(),
  };
}
