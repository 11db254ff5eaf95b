// A zip the patient chose, split into parts made of Blob pieces, so that its bytes never pass
// through the page.
//
// A Blob built from other Blobs (a File, a slice of one) only refers to them: the browser reads
// the file from disk when the upload is sent, once. A part is some of the zip's entries sliced
// out as they are (compressed or not, with the checksums the patient's zip tool wrote) and a
// directory of them at the end, so that the server ingests the first parts while the later ones
// are still being sent, and four of them travel at once.
//
// The server checks every part as it checks any zip (sizes, names, ratios, and each entry's
// CRC-32 while unpacking it), so nothing here is trusted.

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
const END64 = 0x06064b50;
const END64_LOCATOR = 0x07064b50;
const MAX32 = 0xffffffff;
const MAX_COMMENT = 0xffff;

function endRecord(count, directorySize, directoryOffset) {
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, END, true);
  end.setUint16(8, count, true);
  end.setUint16(10, count, true);
  end.setUint32(12, directorySize, true);
  end.setUint32(16, directoryOffset, true);
  return end.buffer;
}

async function bytesOf(blob) {
  return new DataView(await blob.arrayBuffer());
}

function u64(view, at) {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
}

// The entries of the zip `file` from its central directory: [{name, nameBytes, start, end, record,
// method, compressedSize, size}] in the order they lie in the file, `start`..`end` being the
// entry's bytes as stored (its local header, data and any data descriptor). null when the zip
// is one we do not split (damaged, prefixed, spanned, sizes beyond 4 GiB, entries overlapping):
// it is then sent whole, and the server says what is wrong with it.
export async function zipEntries(file) {
  if (file.size < 22) return null;
  const tailStart = Math.max(0, file.size - (22 + MAX_COMMENT));
  const tail = await bytesOf(file.slice(tailStart));
  let at = -1;
  for (let i = tail.byteLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === END && i + 22 + tail.getUint16(i + 20, true) === tail.byteLength) {
      at = i;
      break;
    }
  }
  if (at < 0) return null;
  let count = tail.getUint16(at + 10, true);
  let directorySize = tail.getUint32(at + 12, true);
  let directoryOffset = tail.getUint32(at + 16, true);
  let directoryEnd = tailStart + at;
  if (tail.getUint16(at + 4, true) !== 0 || tail.getUint16(at + 6, true) !== 0) return null; // spanned
  if (count === 0xffff || directorySize === MAX32 || directoryOffset === MAX32) {
    if (at < 20 || tail.getUint32(at - 20, true) !== END64_LOCATOR) return null;
    const end64At = u64(tail, at - 12);
    const end64 = await bytesOf(file.slice(end64At, end64At + 56));
    if (end64.byteLength < 56 || end64.getUint32(0, true) !== END64) return null;
    count = u64(end64, 32);
    directorySize = u64(end64, 40);
    directoryOffset = u64(end64, 48);
    directoryEnd = end64At;
  }
  // A zip with bytes before it (a self-extracting program) has its offsets shifted: not split.
  if (directoryOffset + directorySize !== directoryEnd || count > 100000) return null;
  const directory = await bytesOf(file.slice(directoryOffset, directoryEnd));
  const entries = [];
  let position = 0;
  for (let i = 0; i < count; i++) {
    if (position + 46 > directory.byteLength || directory.getUint32(position, true) !== CENTRAL) return null;
    const nameLength = directory.getUint16(position + 28, true);
    const extraLength = directory.getUint16(position + 30, true);
    const commentLength = directory.getUint16(position + 32, true);
    const recordEnd = position + 46 + nameLength + extraLength + commentLength;
    if (recordEnd > directory.byteLength) return null;
    const compressedSize = directory.getUint32(position + 20, true);
    const size = directory.getUint32(position + 24, true);
    const start = directory.getUint32(position + 42, true);
    // Sizes or offsets past 4 GiB (zip64): such a zip is sent whole.
    if (compressedSize === MAX32 || size === MAX32 || start === MAX32) return null;
    const nameBytes = new Uint8Array(directory.buffer, position + 46, nameLength);
    entries.push({
      name: new TextDecoder().decode(nameBytes),
      start,
      method: directory.getUint16(position + 10, true),
      compressedSize,
      size,
      // The record up to the name, the name and its extra fields (the comment is left out).
      record: new Uint8Array(directory.buffer.slice(position, position + 46 + nameLength + extraLength)),
    });
    position = recordEnd;
  }
  entries.sort((a, b) => a.start - b.start);
  for (let i = 0; i < entries.length; i++) {
    entries[i].end = i + 1 < entries.length ? entries[i + 1].start : directoryOffset;
    if (entries[i].end - entries[i].start < 30 + entries[i].compressedSize) return null; // overlapping
  }
  if (entries.length) {
    const first = await bytesOf(file.slice(entries[0].start, entries[0].start + 4));
    if (first.byteLength < 4 || first.getUint32(0, true) !== LOCAL) return null;
  }
  return entries;
}

// A zip of some `entries` of the zip `file`, their stored bytes sliced out as they are.
// Entries lying one after the other in `file` go as one slice of it: every slice is a request
// to the browser's blob registry, and a part is hundreds of entries.
export function zipOfEntries(file, entries) {
  const parts = [];
  const directory = [];
  let offset = 0;
  let run = null;
  for (const entry of entries) {
    if (run && run.end === entry.start) run.end = entry.end;
    else {
      if (run) parts.push(file.slice(run.start, run.end));
      run = { start: entry.start, end: entry.end };
    }
    const record = new Uint8Array(entry.record);
    const view = new DataView(record.buffer);
    view.setUint16(32, 0, true); // no comment
    view.setUint32(42, offset, true);
    directory.push(record);
    offset += entry.end - entry.start;
  }
  if (run) parts.push(file.slice(run.start, run.end));
  const directorySize = directory.reduce((sum, record) => sum + record.byteLength, 0);
  return new Blob([...parts, ...directory, endRecord(entries.length, directorySize, offset)]);
}

// The unpacked bytes of one (small) entry of the zip `file`, or null if its compression is one
// the browser cannot undo (it then travels inside a part like the others).
export async function entryContent(file, entry) {
  const local = await bytesOf(file.slice(entry.start, entry.start + 30));
  if (local.byteLength < 30 || local.getUint32(0, true) !== LOCAL) return null;
  const dataStart = entry.start + 30 + local.getUint16(26, true) + local.getUint16(28, true);
  const data = file.slice(dataStart, dataStart + entry.compressedSize);
  if (entry.method === 0) return data;
  if (entry.method !== 8 || typeof DecompressionStream === "undefined") return null;
  try {
    return await new Response(data.stream().pipeThrough(new DecompressionStream("deflate-raw"))).blob();
  } catch {
    return null;
  }
}
