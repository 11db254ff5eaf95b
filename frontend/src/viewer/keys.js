// Keyboard shortcuts of the viewer, and the list of them shown under "Keyboard shortcuts".
// One table drives both, so the list cannot drift from what the keys do.

import { gettext } from "../i18n.js";

// [keys as shown, what it does, matcher, action(viewer, event)]
export function shortcuts(viewer) {
  const page = () => Math.max(1, Math.round((viewer.active?.imageIds.length || 0) / 10));
  const step = (delta) => () => viewer.active?.step(delta);
  const tool = (key) => () => viewer.activateTool(key);
  return [
    ["↓ → / ↑ ←", gettext("Next / previous image"), ["ArrowDown", "ArrowRight"], step(1)],
    ["", "", ["ArrowUp", "ArrowLeft"], step(-1)],
    [gettext("Page Down / Page Up"), gettext("Ten images on / back"), ["PageDown"], () => viewer.active?.step(page())],
    ["", "", ["PageUp"], () => viewer.active?.step(-page())],
    [gettext("Home / End"), gettext("First / last image"), ["Home"], step(-Infinity)],
    ["", "", ["End"], step(Infinity)],
    [gettext("Space"), gettext("Play / stop cine"), [" "], () => viewer.toggleCine()],
    ["W P Z S", gettext("Window/level, pan, zoom, scroll tool"), ["w"], tool("wl")],
    ["", "", ["p"], tool("pan")],
    ["", "", ["z"], tool("zoom")],
    ["", "", ["s"], tool("scroll")],
    ["L A E", gettext("Length, angle, ellipse ROI"), ["l"], tool("length")],
    ["", "", ["a"], tool("angle")],
    ["", "", ["e"], tool("ellipse")],
    ["I", gettext("Invert"), ["i"], () => viewer.view("invert")],
    ["R", gettext("Rotate 90°"), ["r"], () => viewer.view("rotate")],
    ["H / V", gettext("Flip horizontally / vertically"), ["h"], () => viewer.view("flip-h")],
    ["", "", ["v"], () => viewer.view("flip-v")],
    ["K", gettext("Mark the image as a key image"), ["k"], () => viewer.markKeyImage()],
    ["1 / 2 / 4", gettext("One, two or four panes"), ["1"], () => viewer.setLayout("1x1")],
    ["", "", ["2"], () => viewer.setLayout("1x2")],
    ["", "", ["4"], () => viewer.setLayout("2x2")],
    ["Y", gettext("Synchronised scrolling on / off"), ["y"], () => viewer.toggleSync()],
    ["0", gettext("Reset the image"), ["0"], () => viewer.view("reset")],
  ];
}

export function listenToKeys(viewer, root) {
  const table = shortcuts(viewer);
  root.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest?.("input, select, textarea, button, summary, a")) {
      // Buttons keep Space and Enter; the image's keys still work from them otherwise.
      if (event.key === " " || event.key === "Enter" || !event.target.closest("button")) return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const found = table.find(([, , keys]) => keys.includes(key));
    if (!found) return;
    event.preventDefault();
    found[3](event);
  });
}

export function renderShortcuts(list, viewer) {
  if (!list) return;
  list.textContent = "";
  for (const [keys, what] of shortcuts(viewer)) {
    if (!keys) continue;
    const term = document.createElement("dt");
    term.textContent = keys;
    const description = document.createElement("dd");
    description.textContent = what;
    list.append(term, description);
  }
}
