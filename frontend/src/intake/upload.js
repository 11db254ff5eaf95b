// Sending files with tus (resumable): several at a time, with retries and backoff, resuming
// where a closed tab or a dropped connection stopped (the upload URL of each file is kept in
// localStorage under a fingerprint of case, path, size and date).
//
// A CD's folder is thousands of small images: one upload per file would cost two round trips
// and one server task each. So the DICOM files of a folder are packed, in the order the scan
// found them, into batches of a few MiB to 16 MiB: each batch is an uncompressed tar made of
// the files themselves (intake/tarbatch.js) sent as one tus upload, and the server checks every
// file in it as it checks a patient's own archive. A zip the patient chose is split the same way into parts, its
// entries sliced out as they are (intake/zipbatch.js), so that the server checks the first
// parts while the rest are on their way, and its DICOMDIR goes on its own, as from a folder.
// Batches and parts are made the same way from the same files every time, so one cut off by a
// closed tab is found again (its fingerprint names its files) and resumed where it stopped.
import * as tus from "tus-js-client";
import { tarOfFiles } from "./tarbatch.js";
import { entryContent, zipEntries, zipOfEntries } from "./zipbatch.js";

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

// The size of the next batch, `made` batches made: small first ones (the server starts checking
// at once, and the patient sees images counted), larger later ones (fewer requests).
function batchLimit(made) {
  return BATCH_BYTES[Math.min(made, BATCH_BYTES.length - 1)];
}

function planAnew(items, kind) {
  const units = [];
  const packable = (item) => kind === "imaging" && item.type === "dicom" && item.file.size < BATCH_BYTES.at(-1);
  let made = 0;
  let batch = [];
  let bytes = 0;
  const close = () => {
    if (batch.length > 1) made += 1;
    if (batch.length) units.push(batch);
    batch = [];
    bytes = 0;
  };
  for (const item of items) {
    if (!packable(item)) {
      units.push([item]);
      continue;
    }
    if (batch.length && (bytes + item.file.size > batchLimit(made) || batch.length >= BATCH_FILES)) close();
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

function isIndex(name) {
  return name.split("/").pop().toUpperCase() === "DICOMDIR";
}

// A unit is one tus upload: {items, parent, bytes, source, relativePath, filename, batchFiles,
// identity}. `items` are the chosen files it completes; a part of a zip completes its `parent`
// (the zip) together with the zip's other parts.
function fileUnits(group) {
  const first = group[0];
  const batched = group.length > 1;
  const relativePath = batched ? `batch-${first.batch.padStart(4, "0")}.tar` : first.relativePath || first.file.name;
  return {
    items: group,
    parent: null,
    bytes: group.reduce((sum, item) => sum + item.file.size, 0),
    relativePath,
    filename: batched ? relativePath : first.file.name,
    batchFiles: batched ? group.length : 0,
    source: async () => (batched ? tarOfFiles(group.map((item) => ({ file: item.file, name: item.relativePath || item.file.name }))) : first.file),
    identity: async () =>
      batched
        ? `tar-batch:${await digest(group.map((item) => [item.relativePath, item.file.size, item.file.lastModified].join("|")).join("\n"))}`
        : `${relativePath}|${first.file.size}|${first.file.lastModified}`,
  };
}

// The parts of a zip the patient chose, or null to send it whole (one we cannot split, or small).
async function zipUnits(item) {
  const { file } = item;
  if (file.size <= BATCH_BYTES[0]) return null;
  let entries;
  try {
    entries = await zipEntries(file);
  } catch {
    return null;
  }
  if (!entries || entries.length < 2) return null;
  const name = item.relativePath || file.name;
  const zipIdentity = `${name}|${file.size}|${file.lastModified}`;
  const units = [];
  for (const entry of entries.filter((e) => isIndex(e.name))) {
    const content = await entryContent(file, entry).catch(() => null);
    if (!content) return null;
    units.push({
      items: [],
      parent: item,
      bytes: entry.end - entry.start,
      relativePath: `${name}/${entry.name}`,
      filename: entry.name.split("/").pop(),
      batchFiles: 0,
      source: async () => content,
      identity: async () => `zip-index:${zipIdentity}|${entry.start}`,
    });
  }
  const groups = [];
  const images = entries.filter((e) => !isIndex(e.name) && !e.name.endsWith("/"));
  let group = [];
  let bytes = 0;
  for (const entry of images) {
    const length = entry.end - entry.start;
    if (group.length && (bytes + length > batchLimit(groups.length) || group.length >= BATCH_FILES)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(entry);
    bytes += length;
  }
  if (group.length) groups.push(group);
  groups.forEach((part, index) => {
    const label = `${name} (${index + 1}/${groups.length})`;
    units.push({
      items: [],
      parent: item,
      bytes: part.reduce((sum, entry) => sum + entry.end - entry.start, 0),
      relativePath: label,
      filename: label,
      batchFiles: part.length,
      source: async () => zipOfEntries(file, part),
      identity: async () => `zip-part:${zipIdentity}|${part[0].start}-${part.at(-1).end}`,
    });
  });
  return units;
}

async function unitsOf(items, kind) {
  const units = [];
  for (const group of plan(items, kind)) {
    const split = kind === "imaging" && group.length === 1 && group[0].type === "zip" ? await zipUnits(group[0]) : null;
    if (split) units.push(...split);
    else units.push(fileUnits(group));
  }
  return units;
}

// items: [{file, relativePath, type?, reportKind?}]. Resolves with {sent, failed: [{item, message}]}.
// onProgress gets bytes (never going back, even when a chunk is sent again) and whole files.
export async function uploadAll(items, { endpoint, caseId, kind, chunkSize, csrf, onProgress, onUnitDone = () => {} }) {
  const total = items.reduce((sum, item) => sum + item.file.size, 0) || 1;
  setPending(caseId, kind, items.length);
  const units = await unitsOf(items, kind);
  const sentBytes = new Array(units.length).fill(0);
  // Parts of each zip still to send; a zip counts as sent when none is left, failed once.
  const partsLeft = new Map();
  for (const unit of units) if (unit.parent) partsLeft.set(unit.parent, (partsLeft.get(unit.parent) || 0) + 1);
  let next = 0;
  let sent = 0;
  const failed = [];
  const failedParents = new Set();
  const report = () => onProgress({ bytes: Math.min(sentBytes.reduce((a, b) => a + b, 0), total), total, sent, failed: failed.length, count: items.length });

  function done(unit) {
    if (unit.parent) {
      partsLeft.set(unit.parent, partsLeft.get(unit.parent) - 1);
      if (partsLeft.get(unit.parent) === 0 && !failedParents.has(unit.parent)) sent += 1;
    } else {
      sent += unit.items.length;
    }
    setPending(caseId, kind, items.length - sent);
  }

  function fail(unit, message) {
    if (!unit.parent) for (const item of unit.items) failed.push({ item, message });
    else if (!failedParents.has(unit.parent)) {
      failedParents.add(unit.parent);
      failed.push({ item: unit.parent, message });
    }
  }

  async function one(index) {
    const unit = units[index];
    const source = await unit.source();
    const first = unit.parent || unit.items[0];
    // A report found on a disc (a PDF in a folder drop) is sent as a report of its own.
    const unitKind = first.uploadKind || kind;
    const metadata = { case: caseId, kind: unitKind, filename: unit.filename, relativePath: unit.relativePath };
    if (first.reportKind) metadata.reportKind = first.reportKind;
    if (unit.batchFiles) metadata.batchFiles = String(unit.batchFiles);
    const identity = await unit.identity();
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
          // In file bytes (a batch's tar framing is not counted), never backwards.
          const share = Math.floor((bytes / (bytesTotal || 1)) * unit.bytes);
          sentBytes[index] = Math.max(sentBytes[index], share);
          report();
        },
        onSuccess: () => {
          sentBytes[index] = unit.bytes;
          done(unit);
          report();
          onUnitDone();
          resolve();
        },
        onError: (error) => {
          fail(unit, serverMessage(error));
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
  await Promise.all(Array.from({ length: Math.min(PARALLEL, units.length) }, worker));
  setPending(caseId, kind, failed.length);
  return { sent, failed };
}
