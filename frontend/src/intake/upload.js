// Sending files with tus (resumable): several at a time, with retries and backoff, resuming
// where a closed tab or a dropped connection stopped (the upload URL of each file is kept in
// localStorage under a fingerprint of case, path, size and date).
//
// A CD's folder is thousands of small images: one upload per file would cost two round trips
// and one server task each. So the DICOM files of a folder are packed, in the order the scan
// found them, into batches of a few MiB to 16 MiB: each batch is an uncompressed zip
// (client-zip, streamed from the files, nothing compressed) sent as one tus upload and
// ingested by the server's zip path, which checks every file in it as it checks a patient's
// own zip. Batches are made the same way from the same files every time, so a batch cut off by
// a closed tab is found again (its fingerprint names its files) and resumed where it stopped.
import { makeZip } from "client-zip";
import * as tus from "tus-js-client";

const PARALLEL = 4;
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];
const MiB = 1024 * 1024;
// The first batches are small so that the server starts checking images (and the patient sees
// them counted) while the rest are still being packed and sent; later ones are larger (fewer
// requests). The server claims uploads up to 16 MiB together, so a batch never waits behind
// another (imaging.ingest.pipeline.CLAIM_BATCH_MAX_BYTES).
const BATCH_BYTES = [2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB];
const BATCH_FILES = 2000;

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
  // broken connections will. 423: another request of this same upload is still sending (a
  // retry that overtook it): tus-js-client asks for the offset (HEAD) and resumes from there.
  if (status >= 400 && status < 500) return [408, 409, 423, 429].includes(status);
  return true;
}

function serverMessage(error) {
  const response = error.originalResponse;
  const body = response ? response.getBody() : "";
  return body && body.length < 400 ? body : "";
}

// Groups of items to send as one upload each: DICOM images of an imaging upload are packed
// into batches; zips, reports, large images and a lone image go as they are. Items keep the
// batch they were first planned in (item.batch), so "Try again" resends the same batches and
// resumes them, rather than packing the failed files differently.
export function plan(items, kind) {
  if (items.length && items.every((item) => item.batch)) {
    const groups = new Map();
    for (const item of items) groups.set(item.batch, [...(groups.get(item.batch) || []), item]);
    return [...groups.values()];
  }
  const units = planAnew(items, kind);
  units.forEach((unit, index) => unit.forEach((item) => (item.batch = `${index + 1}`)));
  return units;
}

function planAnew(items, kind) {
  const units = [];
  let batch = [];
  let bytes = 0;
  const limit = () => BATCH_BYTES[Math.min(units.filter((u) => u.length > 1).length, BATCH_BYTES.length - 1)];
  const close = () => {
    if (batch.length) units.push(batch);
    batch = [];
    bytes = 0;
  };
  for (const item of items) {
    const packable = kind === "imaging" && item.type === "dicom" && item.file.size < BATCH_BYTES.at(-1);
    if (!packable) {
      units.push([item]);
      continue;
    }
    if (batch.length && (bytes + item.file.size > limit() || batch.length >= BATCH_FILES)) close();
    batch.push(item);
    bytes += item.file.size;
  }
  close();
  return units;
}

async function digest(text) {
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The bytes of one unit: the file itself, or the batch packed as an uncompressed zip.
async function unitSource(unit) {
  if (unit.length === 1) return unit[0].file;
  const entries = unit.map((item) => ({ input: item.file, name: item.relativePath || item.file.name, lastModified: new Date(item.file.lastModified) }));
  return new Response(makeZip(entries)).blob();
}

// items: [{file, relativePath, type?, reportKind?}]. Resolves with {sent, failed: [{item, message}]}.
// onProgress gets bytes (never going back, even when a chunk is sent again) and whole files.
export function uploadAll(items, { endpoint, caseId, kind, chunkSize, csrf, onProgress, onUnitDone = () => {} }) {
  const total = items.reduce((sum, item) => sum + item.file.size, 0) || 1;
  const units = plan(items, kind);
  const unitBytes = units.map((unit) => unit.reduce((sum, item) => sum + item.file.size, 0));
  const sentBytes = new Array(units.length).fill(0);
  let next = 0;
  let sent = 0;
  const failed = [];
  setPending(caseId, kind, items.length);
  const report = () => onProgress({ bytes: sentBytes.reduce((a, b) => a + b, 0), total, sent, failed: failed.length, count: items.length });

  async function one(index) {
    const unit = units[index];
    const source = await unitSource(unit);
    const batched = unit.length > 1;
    const first = unit[0];
    const relativePath = batched ? `batch-${first.batch.padStart(4, "0")}.zip` : first.relativePath || first.file.name;
    // A report found on a disc (a PDF in a folder drop) is sent as a report of its own.
    const unitKind = first.uploadKind || kind;
    const metadata = { case: caseId, kind: unitKind, filename: batched ? relativePath : first.file.name, relativePath };
    if (first.reportKind) metadata.reportKind = first.reportKind;
    if (batched) metadata.batchFiles = String(unit.length);
    const identity = batched
      ? `batch:${await digest(unit.map((item) => [item.relativePath, item.file.size, item.file.lastModified].join("|")).join("\n"))}`
      : `${relativePath}|${first.file.size}|${first.file.lastModified}`;
    return new Promise((resolve) => {
      const upload = new tus.Upload(source, {
        endpoint,
        chunkSize,
        // The first chunk rides on the creation request (tus creation-with-upload): one round
        // trip less per file or batch, which is what a patient far away waits for.
        uploadDataDuringCreation: true,
        retryDelays: RETRY_DELAYS,
        metadata,
        headers: { "X-CSRFToken": csrf },
        storeFingerprintForResuming: true,
        // Kept after success: choosing the same folder again skips files already sent.
        removeFingerprintOnSuccess: false,
        fingerprint: () => Promise.resolve(["secondread", caseId, unitKind, identity, endpoint].join("|")),
        onShouldRetry: (error) => shouldRetry(error),
        onProgress: (bytes, bytesTotal) => {
          // In file bytes (a batch's zip framing is not counted), never backwards.
          const share = Math.floor((bytes / (bytesTotal || 1)) * unitBytes[index]);
          sentBytes[index] = Math.max(sentBytes[index], share);
          report();
        },
        onSuccess: () => {
          sentBytes[index] = unitBytes[index];
          sent += unit.length;
          setPending(caseId, kind, items.length - sent);
          report();
          onUnitDone();
          resolve();
        },
        onError: (error) => {
          const message = serverMessage(error);
          for (const item of unit) failed.push({ item, message });
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
    while (next < units.length) {
      const index = next;
      next += 1;
      await one(index);
    }
  }

  report();
  return Promise.all(Array.from({ length: Math.min(PARALLEL, units.length) }, worker)).then(() => {
    setPending(caseId, kind, failed.length);
    return { sent, failed };
  });
}
