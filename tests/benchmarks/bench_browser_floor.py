"""What Chromium itself costs to send a folder, with no server work at all: the floor under any
browser upload, to read bench_folder_drop.py's numbers against.

Run by hand (prints numbers, asserts nothing; no database needed):

    .venv/bin/python tests/benchmarks/bench_browser_floor.py [--files DIR] [--set ct|cd]

The files are bench_folder_drop.py's (made there, kept with ``--files``). A page on a raw
loopback sink (a Python socket server that reads each body into one reused buffer and answers
200) is given the folder through a file input, then, each twice (the second run is the warm one
a patient's upload sees):

- ``reads``: the scan's way of reading the first 16 KiB of every file, one read per file (32 at
  a time) against one read of a Blob of 256 files' slices (frontend/src/intake/scan.js);
- ``send``: every file sent in 16 MiB Blob batches made of the File objects themselves, 4 at a
  time, with XMLHttpRequest (as tus-js-client sends) and with fetch;
- ``send via page``: the same batches read into the page first (``Blob.arrayBuffer``) and sent
  from memory: what any approach that touches the bytes in JavaScript (a checksum, a zip
  library) pays.

Printed: wall seconds in the page, and CPU seconds by Chromium process (main, network service,
renderer), and the sink's own CPU.
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PAGE = b"""<!doctype html><html><body><input type=file id=files multiple><script>
const files = () => [...document.getElementById("files").files];
window.reads = async (grouped) => {
  const all = files();
  const start = performance.now();
  const step = grouped ? 256 : 32;
  for (let i = 0; i < all.length; i += step) {
    const group = all.slice(i, i + step);
    if (grouped) await new Blob(group.map((f) => f.slice(0, 16384))).arrayBuffer();
    else await Promise.all(group.map((f) => f.slice(0, 16384).arrayBuffer()));
  }
  return performance.now() - start;
};
window.send = async (mode) => {
  const batches = [];
  let batch = [];
  let bytes = 0;
  for (const f of files()) {
    if (batch.length && bytes + f.size > 16 * 1048576) { batches.push(batch); batch = []; bytes = 0; }
    batch.push(f);
    bytes += f.size;
  }
  if (batch.length) batches.push(batch);
  let next = 0;
  const start = performance.now();
  async function worker() {
    while (next < batches.length) {
      let body = new Blob(batches[next++]);
      if (mode === "page") body = await body.arrayBuffer();
      if (mode === "fetch") await (await fetch("/sink", { method: "POST", body })).text();
      else await new Promise((done) => {
        const request = new XMLHttpRequest();
        request.open("POST", "/sink");
        request.onload = done;
        request.send(body);
      });
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker));
  return performance.now() - start;
};
</script></body></html>"""


def sink(port: int) -> None:
    """A raw HTTP sink: serves PAGE on GET, reads any body into one buffer and answers 200."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)

    def handle(connection: socket.socket) -> None:
        buffer = bytearray(1024 * 1024)
        stream = io.BufferedReader(socket.SocketIO(connection, "rb"), 65536)
        with connection:
            while line := stream.readline():
                length = 0
                while (header := stream.readline()) not in (b"\r\n", b""):
                    if header.lower().startswith(b"content-length"):
                        length = int(header.split(b":")[1])
                if line.startswith(b"GET"):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PAGE) + PAGE)
                    continue
                while length:
                    count = stream.readinto(memoryview(buffer)[: min(length, len(buffer))])
                    if not count:
                        return
                    length -= count
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def serve() -> None:
        while True:
            connection, _ = server.accept()
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def browser_cpu() -> dict[str, float]:
    import psutil

    totals = {"main": 0.0, "network": 0.0, "renderer": 0.0}
    for child in psutil.Process().children(recursive=True):
        try:
            line = " ".join(child.cmdline())
            times = child.cpu_times()
        except psutil.Error:
            continue
        if "chrom" not in line.lower():
            continue
        kind = "renderer" if "--type=renderer" in line else "network" if "NetworkService" in line else "main"
        totals[kind] += times.user + times.system
    return totals


def main() -> None:
    from bench_folder_drop import free_port, make_files
    from playwright.sync_api import sync_playwright

    from tests.live import CHROMIUM, CHROMIUM_ARGS

    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=Path, default=Path(tempfile.gettempdir()) / "bench-folder-drop-files")
    parser.add_argument("--set", choices=["ct", "cd"], default="ct")
    args = parser.parse_args()
    files = make_files(args.files)[args.set]
    paths = [str(path) for path in files.images]
    port = free_port()
    sink(port)
    print(f"{files.name}: {len(paths)} files, {files.megabytes:.0f} MB", flush=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.set_input_files("#files", paths)
        page.evaluate("files().reduce((sum, f) => sum + f.size, 0)")  # sizes known: a scan asks first
        for label, expression in [
            ("reads, one per file", "reads(false)"),
            ("reads, 256 files a read", "reads(true)"),
            ("send, XMLHttpRequest", "send('xhr')"),
            ("send, fetch", "send('fetch')"),
            ("send via page (bytes read in JS)", "send('page')"),
        ]:
            for _ in range(2):
                before, process_before = browser_cpu(), time.process_time()
                milliseconds = page.evaluate(expression)
                after, process_after = browser_cpu(), time.process_time()
                cpu = ", ".join(f"{kind} {after[kind] - before[kind]:.2f}" for kind in after)
                print(
                    f"{label:<34} {milliseconds / 1000:6.2f} s   CPU s: {cpu}, "
                    f"sink {process_after - process_before:.2f}",
                    flush=True,
                )
        browser.close()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    main()
