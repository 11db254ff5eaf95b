// Mouse tools of the viewer (one Cornerstone tool group for every pane) and what each reports.
import {
  AngleTool,
  EllipticalROITool,
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
} from "@cornerstonejs/tools";

import { gettext, interpolate } from "../i18n.js";

// [key, button label, Cornerstone tool, keyboard shortcut]
export const TOOLS = [
  ["wl", gettext("Window/level"), WindowLevelTool.toolName, "w"],
  ["pan", gettext("Pan"), PanTool.toolName, "p"],
  ["zoom", gettext("Zoom"), ZoomTool.toolName, "z"],
  ["scroll", gettext("Scroll"), StackScrollTool.toolName, "s"],
  ["length", gettext("Measure"), LengthTool.toolName, "l"],
  ["angle", gettext("Angle"), AngleTool.toolName, "a"],
  ["ellipse", gettext("Ellipse ROI"), EllipticalROITool.toolName, "e"],
];
export const MEASURING = new Map([
  [LengthTool.toolName, "length"],
  [AngleTool.toolName, "angle"],
  [EllipticalROITool.toolName, "ellipse"],
]);

export function registerTools() {
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool, AngleTool, EllipticalROITool]) {
    addTool(tool);
  }
}

// The left button does what the toolbar says; the wheel always scrolls, the middle button pans
// and the right button zooms, as in most radiology viewers.
export function createToolGroup(groupId) {
  const group = ToolGroupManager.createToolGroup(groupId);
  for (const [, , name] of TOOLS) group.addTool(name);
  const { MouseBindings } = ToolEnums;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  for (const name of MEASURING.keys()) group.setToolPassive(name);
  return group;
}

export function activateTool(group, previousKey, key) {
  const { MouseBindings } = ToolEnums;
  const name = TOOLS.find(([k]) => k === key)[2];
  const previous = TOOLS.find(([k]) => k === previousKey)[2];
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
}

const round = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "?");

// What a finished measurement says, in words the reader sees and that are saved with it:
// "Length: 23.4 mm", "Angle: 45.0°", "Mean 41.2 HU, SD 6.1 (area 120.5 mm²)".
export function measurementLabel(toolName, stats) {
  if (!stats) return "";
  if (toolName === LengthTool.toolName && Number.isFinite(stats.length)) {
    return interpolate(gettext("Length: %(length)s"), { length: `${round(stats.length)} ${stats.unit || "mm"}` });
  }
  if (toolName === AngleTool.toolName && Number.isFinite(stats.angle)) {
    return interpolate(gettext("Angle: %(angle)s°"), { angle: round(stats.angle) });
  }
  if (toolName === EllipticalROITool.toolName && Number.isFinite(stats.mean)) {
    const unit = stats.modalityUnit ? ` ${stats.modalityUnit}` : "";
    const areaText = `${round(stats.area)} ${stats.areaUnit || ""}`.trim();
    const area = Number.isFinite(stats.area) ? ` (${interpolate(gettext("area %(area)s"), { area: areaText })})` : "";
    return interpolate(gettext("Mean %(mean)s, SD %(sd)s"), { mean: `${round(stats.mean)}${unit}`, sd: `${round(stats.stdDev)}${unit}` }) + area;
  }
  return "";
}
