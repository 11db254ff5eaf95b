// Sending files with tus (resumable): several at a time, with retries and backoff, resuming
// where a closed tab or a dropped connection stopped (the upload URL of each file is kept in
// localStorage under a fingerprint of case, path, size and date).
import * as tus from "tus-js-client";

const PARALLEL = 4;
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];

function pendingKey(caseId, kind) {
  return `secondread:pending:${caseId}:${kind}`;
}

export function pendingCount(caseId, kind) {
  try {
    return Number(localStorage.getItem(pendingKey(caseId, kind)) || 0);
  } catch {
    return 0;
  }
}

function setPending(caseId, kind, count) {
  try {
    if (count > 0) localStorage.setItem(pendingKey(caseId, kind), String(count));
    else localStorage.removeItem(pendingKey(caseId, kind));
  } catch {
    /* private mode: resuming after a closed tab is not possible, uploading still is */
  }
}

function shouldRetry(error) {
  const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
  // Refusals (not signed in, not your case, bad file) will not change on retry; busy or
  // broken connections will.
  if (status >= 400 && status < 500) return [408, 409, 423, 429].includes(status);
  return true;
}

function serverMessage(error) {
  const response = error.originalResponse;
  const body = response ? response.getBody() : "";
  return body && body.length < 400 ? body : "";
}

// items: [{file, relativePath, reportKind?}]. Resolves with {sent, failed: [{item, message}]}.
export function uploadAll(items, { endpoint, caseId, kind, chunkSize, csrf, onProgress }) {
  const total = items.reduce((sum, item) => sum + item.file.size, 0) || 1;
  const sentBytes = new Array(items.length).fill(0);
  let next = 0;
  let sent = 0;
  const failed = [];
  setPending(caseId, kind, items.length);
  const report = () => onProgress({ bytes: sentBytes.reduce((a, b) => a + b, 0), total, sent, failed: failed.length, count: items.length });

  function one(index) {
    const item = items[index];
    return new Promise((resolve) => {
      const metadata = { case: caseId, kind, filename: item.file.name, relativePath: item.relativePath || item.file.name };
      if (item.reportKind) metadata.reportKind = item.reportKind;
      const upload = new tus.Upload(item.file, {
        endpoint,
        chunkSize,
        retryDelays: RETRY_DELAYS,
        metadata,
        headers: { "X-CSRFToken": csrf },
        storeFingerprintForResuming: true,
        // Kept after success: choosing the same folder again skips files already sent.
        removeFingerprintOnSuccess: false,
        fingerprint: (file) =>
          Promise.resolve(["secondread", caseId, kind, metadata.relativePath, file.size, file.lastModified, endpoint].join("|")),
        onShouldRetry: (error) => shouldRetry(error),
        onProgress: (bytes) => {
          sentBytes[index] = bytes;
          report();
        },
        onSuccess: () => {
          sentBytes[index] = item.file.size;
          sent += 1;
          setPending(caseId, kind, items.length - sent);
          report();
          resolve();
        },
        onError: (error) => {
          failed.push({ item, message: serverMessage(error) });
          report();
          resolve();
        },
      });
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
    });
  }

  async function worker() {
    while (next < items.length) {
      const index = next;
      next += 1;
      await one(index);
    }
  }

  report();
  return Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker)).then(() => {
    setPending(caseId, kind, failed.length);
    return { sent, failed };
  });
}
