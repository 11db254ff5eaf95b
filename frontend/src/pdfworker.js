// pdf.js's worker, bundled as its own file so the page can point GlobalWorkerOptions at it.
import "pdfjs-dist/build/pdf.worker.mjs";
