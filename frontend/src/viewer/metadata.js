// What the viewer fixes in an instance's DICOM JSON before Cornerstone sees it.
//
// 1. How big a pixel is.
// Some real radiographs (a CR from pydicom-data among them) carry Pixel Spacing "0.000\0.000".
// Cornerstone took that at its word: the image got a zero-sized extent, the camera's scale
// became NaN, the canvas stayed black, and that camera was kept for every series opened after
// it. So a spacing that is missing, zero, negative or not a number is treated as unknown:
// Imager Pixel Spacing (at the detector, what projection radiographs usually carry) is used
// instead when it is sound, else no spacing at all (Cornerstone then measures in pixels).
//
// 2. Palette colour tables. Our metadata (like any DICOMweb server's) carries the tables as
// InlineBinary (base64 of OW words); Cornerstone's WADO-RS loader reads only "Value" and
// refused the image ("does not have a complete color palette"). They are unpacked into numbers.
import { value } from "./dicomweb.js";
import { gettext } from "../i18n.js";

const PIXEL_SPACING = "00280030";
const IMAGER_PIXEL_SPACING = "00181164";
const ULTRASOUND_REGIONS = "00186011";

export const NOT_CALIBRATED = gettext("Not calibrated: lengths in pixels");
export const AT_DETECTOR = gettext("Spacing at the detector (not calibrated)");

function spacing(meta, tag) {
  const values = meta?.[tag]?.Value;
  if (!Array.isArray(values) || values.length < 2) return null;
  const numbers = values.slice(0, 2).map(Number);
  return numbers.every((n) => Number.isFinite(n) && n > 0) ? numbers : null;
}

const PALETTES = [
  ["00281101", "00281201"],
  ["00281102", "00281202"],
  ["00281103", "00281203"],
];

function unpackPalettes(meta) {
  let fixed = meta;
  for (const [descriptorTag, dataTag] of PALETTES) {
    const inline = meta[dataTag]?.InlineBinary;
    const descriptor = meta[descriptorTag]?.Value;
    if (!inline || !Array.isArray(descriptor) || descriptor.length < 3) continue;
    const bytes = Uint8Array.from(atob(inline), (c) => c.charCodeAt(0));
    const entries = Number(descriptor[0]) || 65536;
    const values = new Array(entries);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < entries; i++) {
      if (Number(descriptor[2]) === 16) values[i] = 2 * i + 1 < bytes.length ? view.getUint16(2 * i, true) : 0;
      else values[i] = i < bytes.length ? bytes[i] : 0;
    }
    if (fixed === meta) fixed = { ...meta };
    fixed[dataTag] = { vr: "US", Value: values };
  }
  return fixed;
}

// Both fixes: see the top of this module.
export function prepareMetadata(meta) {
  if (!meta) return { meta, calibration: "" };
  return withSoundSpacing(unpackPalettes(meta));
}

// ``{ meta, calibration }``: the metadata to hand Cornerstone (a copy when it had to change) and
// what the reader is told about lengths: "" (calibrated), AT_DETECTOR or NOT_CALIBRATED.
export function withSoundSpacing(meta) {
  if (!meta || spacing(meta, PIXEL_SPACING)) return { meta, calibration: "" };
  const fixed = { ...meta };
  delete fixed[PIXEL_SPACING];
  const imager = spacing(meta, IMAGER_PIXEL_SPACING);
  if (imager) {
    fixed[PIXEL_SPACING] = { vr: "DS", Value: imager };
    return { meta: fixed, calibration: AT_DETECTOR };
  }
  // Ultrasound measures from its regions' own physical units (Cornerstone reads them).
  if (value(meta, ULTRASOUND_REGIONS)) return { meta: fixed, calibration: "" };
  return { meta: fixed, calibration: NOT_CALIBRATED };
}
