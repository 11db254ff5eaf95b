// A batch of a folder drop: an uncompressed tar (POSIX pax) made of Blob pieces, so that the
// bytes of the patient's files never pass through the page.
//
// A Blob built from other Blobs (a File, a slice of one) only refers to them: the browser reads
// the files from disk once, when the upload is sent. A tar suits that: before each file a
// 512-byte header (its name, size and date, with a checksum of the header alone), after it zeros
// up to the next 512 bytes, and two zero blocks at the end. Unlike a zip it has no checksum of
// the file's bytes, which the page would have to read every file for (the costliest thing the
// page did in a folder drop); the bytes are protected on the way by TLS, and a file changed on
// disk after it was chosen cannot be read by the browser at all.
//
// The server reads the batch as it reads any tar a patient uploads (imaging.ingest.unpack):
// every name, type and size checked, nothing trusted.

const BLOCK = 512;
const ZEROS = new Uint8Array(BLOCK * 2);

function octal(view, at, width, value) {
  // width - 1 octal digits and a NUL, as POSIX writes numeric fields.
  const digits = value.toString(8).padStart(width - 1, "0");
  for (let i = 0; i < width - 1; i++) view[at + i] = digits.charCodeAt(i);
  view[at + width - 1] = 0;
}

function header(nameBytes, size, mtime, type) {
  const block = new Uint8Array(BLOCK);
  block.set(nameBytes.subarray(0, 100), 0);
  octal(block, 100, 8, 0o644);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, size);
  octal(block, 136, 12, mtime);
  block[156] = type.charCodeAt(0);
  block.set([0x75, 0x73, 0x74, 0x61, 0x72, 0x00, 0x30, 0x30], 257); // "ustar\0" "00"
  // The checksum: the header's bytes summed with the checksum field taken as spaces.
  block.fill(0x20, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  octal(block, 148, 7, sum);
  block[155] = 0x20;
  return block;
}

function padding(size) {
  const rest = size % BLOCK;
  return rest ? ZEROS.subarray(0, BLOCK - rest) : null;
}

// A pax record "<length> path=<name>\n", its length counting itself.
function paxPath(nameBytes) {
  const encoder = new TextEncoder();
  const body = nameBytes.length + " path=\n".length;
  let length = body + String(body).length;
  if (String(length).length !== String(body).length) length += 1;
  const record = new Uint8Array(length);
  record.set(encoder.encode(`${length} path=`), 0);
  record.set(nameBytes, length - nameBytes.length - 1);
  record[length - 1] = 0x0a;
  return record;
}

function joined(arrays) {
  const out = new Uint8Array(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    out.set(array, offset);
    offset += array.length;
  }
  return out;
}

// An uncompressed tar of files ([{file, name}]), as a Blob that refers to the files rather than
// copying them. A name that is not plain ASCII of at most 100 bytes gets a pax header carrying
// it in full (UTF-8); the ustar header then holds a shortened stand-in. The bytes between two
// files (padding, headers) go as one piece: a Blob of thousands of pieces costs the browser.
export function tarOfFiles(entries) {
  const encoder = new TextEncoder();
  const parts = [];
  let between = [];
  entries.forEach(({ file, name }, index) => {
    const nameBytes = encoder.encode(name);
    const mtime = Math.max(0, Math.floor((file.lastModified || Date.now()) / 1000));
    const plain = nameBytes.length <= 100 && !nameBytes.some((byte) => byte > 0x7e || byte < 0x20);
    if (!plain) {
      const record = paxPath(nameBytes);
      between.push(header(encoder.encode("PaxHeader"), record.length, mtime, "x"), record);
      const pad = padding(record.length);
      if (pad) between.push(pad);
    }
    between.push(header(plain ? nameBytes : encoder.encode(`file-${index}`), file.size, mtime, "0"));
    parts.push(joined(between), file);
    between = [];
    const pad = padding(file.size);
    if (pad) between.push(pad);
  });
  between.push(ZEROS);
  parts.push(joined(between));
  return new Blob(parts);
}
