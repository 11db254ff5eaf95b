// vtk.js (under Cornerstone) imports xmlbuilder2 for its VTK XML file writer, which the viewer
// never uses; the real package needs Node's "events" module and would fail in the browser.
export function create() {
  throw new Error("XML export is not available in the viewer.");
}
