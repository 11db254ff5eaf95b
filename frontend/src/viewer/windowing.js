// Which windows (centre / width) the viewer offers, by what the image is.
//
// CT presets are in Hounsfield units: on MR, CR or US they mean nothing and white the image out,
// so they are offered on CT only. First come the file's own VOI windows (what the modality or
// the radiologist chose), then an automatic window from the pixels themselves (1st to 99th
// percentile: a few very bright or dark pixels do not flatten the rest), then, on CT, the presets.

import { gettext, interpolate } from "../i18n.js";

// Window presets (centre / width in Hounsfield units), as radiology workstations name them:
// [key, name shown, centre, width].
export const CT_PRESETS = [
  ["brain", gettext("Brain"), 40, 80],
  ["soft tissue", gettext("Soft tissue"), 40, 400],
  ["abdomen", gettext("Abdomen"), 60, 400],
  ["lung", gettext("Lung"), -600, 1500],
  ["bone", gettext("Bone"), 400, 1800],
];

const TAG = {
  center: "00281050",
  width: "00281051",
  explanation: "00281055",
  voiLut: "00283010",
  lutDescriptor: "00283002",
  lutExplanation: "00283003",
};

const numbers = (meta, tag) => (meta?.[tag]?.Value || []).map(Number);

// The file's own windows: every Window Center / Width pair (named by its explanation when the
// file gives one), and each VOI LUT, offered as the linear window spanning the LUT's input range.
export function fileWindows(meta) {
  const centers = numbers(meta, TAG.center);
  const widths = numbers(meta, TAG.width);
  const names = meta?.[TAG.explanation]?.Value || [];
  const found = [];
  centers.forEach((center, i) => {
    const width = widths[i] ?? widths[0];
    if (Number.isFinite(center) && width > 0) {
      const name = names[i] ? String(names[i]) : centers.length > 1 ? interpolate(gettext("File window %(number)s"), { number: i + 1 }) : gettext("File window");
      found.push({ key: `file-${i}`, label: name, center, width });
    }
  });
  (meta?.[TAG.voiLut]?.Value || []).forEach((item, i) => {
    const descriptor = (item?.[TAG.lutDescriptor]?.Value || []).map(Number);
    if (descriptor.length < 3) return;
    const entries = descriptor[0] || 65536;
    const first = descriptor[1];
    const name = item?.[TAG.lutExplanation]?.Value?.[0];
    found.push({
      key: `lut-${i}`,
      label: name ? `VOI LUT: ${name}` : gettext("File VOI LUT"),
      center: first + entries / 2,
      width: entries,
    });
  });
  return found;
}

// Centre / width from the 1st to the 99th percentile of ``values`` (a typed array of modality
// values), sampled to at most ~200,000 pixels so a large radiograph costs a few milliseconds.
export function percentileWindow(values) {
  if (!values?.length) return null;
  const stride = Math.max(1, Math.floor(values.length / 200_000));
  const sample = new Float64Array(Math.ceil(values.length / stride));
  let n = 0;
  for (let i = 0; i < values.length; i += stride) {
    const v = values[i];
    if (Number.isFinite(v)) sample[n++] = v;
  }
  if (!n) return null;
  const sorted = sample.subarray(0, n).sort();
  const low = sorted[Math.floor(0.01 * (n - 1))];
  const high = sorted[Math.ceil(0.99 * (n - 1))];
  const width = Math.max(high - low, 1);
  return { center: low + width / 2, width };
}

// The automatic window of the image on screen (Cornerstone's image: values already rescaled
// when the loader pre-scaled them, else rescaled here).
export function autoWindow(image) {
  if (!image || image.color) return null;
  const pixels = image.getPixelData?.();
  if (!pixels) return null;
  const scaled = image.preScale?.scaled;
  const slope = scaled ? 1 : image.slope ?? 1;
  const intercept = scaled ? 0 : image.intercept ?? 0;
  const found = percentileWindow(pixels);
  if (!found) return null;
  return { center: found.center * slope + intercept, width: found.width * Math.abs(slope || 1) };
}

// Everything offered for an image, in order: file windows, "Auto", then CT presets on CT.
export function windowsFor(modality, meta) {
  const offered = fileWindows(meta);
  offered.push({ key: "auto", label: gettext("Auto"), auto: true });
  if (String(modality || "").toUpperCase() === "CT") {
    for (const [key, label, center, width] of CT_PRESETS) offered.push({ key, label, center, width });
  }
  return offered;
}

export const voiRangeOf = ({ center, width }) => ({ lower: center - width / 2, upper: center + width / 2 });
