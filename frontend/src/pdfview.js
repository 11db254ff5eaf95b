// Reports in the workspace: drawn by pdf.js into <canvas> elements, never handed to the
// browser's PDF plug-in. The file is a copy rewritten at ingest without active content, served
// as a download with "Content-Security-Policy: sandbox",
// and pdf.js runs no script from the document (isEvalSupported off, no scripting build).
const MAX_PAGES = 30;

export async function pdfRender(container) {
  const status = container.querySelector(".pdf-status");
  try {
    const pdfjs = await import("pdfjs-dist");
    pdfjs.GlobalWorkerOptions.workerSrc = container.dataset.pdfWorker;
    const response = await fetch(container.dataset.pdfSrc, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = new Uint8Array(await response.arrayBuffer());
    const pdf = await pdfjs.getDocument({ data, isEvalSupported: false, enableXfa: false }).promise;
    const width = Math.max(320, container.clientWidth - 16);
    for (let number = 1; number <= Math.min(pdf.numPages, MAX_PAGES); number += 1) {
      const page = await pdf.getPage(number);
      const base = page.getViewport({ scale: 1 });
      const scale = width / base.width;
      const ratio = window.devicePixelRatio || 1;
      const viewport = page.getViewport({ scale: scale * ratio });
      const canvas = document.createElement("canvas");
      canvas.width = Math.floor(viewport.width);
      canvas.height = Math.floor(viewport.height);
      canvas.style.width = `${Math.floor(viewport.width / ratio)}px`;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `Report page ${number} of ${pdf.numPages}`);
      canvas.dataset.page = String(number);
      container.appendChild(canvas);
      await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
    }
    if (status) status.remove();
    container.dataset.rendered = String(pdf.numPages);
  } catch (error) {
    if (status) status.textContent = "This report could not be displayed here. Use “Download the report” below.";
    container.dataset.rendered = "error";
  }
}

export function pdfRenderAll(root = document) {
  for (const container of root.querySelectorAll(".pdf-view[data-pdf-src]")) pdfRender(container);
}
