"""The patient's "download the original files" zip: memory and speed of the streamed archive.

Run by hand (prints numbers, asserts nothing; needs no database):

    .venv/bin/python tests/benchmarks/bench_images_zip.py [--files 400] [--mib 5]

Streams a zip of ``--files`` files of ``--mib`` MiB each (random bytes, read from memory as
storage would hand them out) through :func:`imaging.download.zip_stream`, discarding the output as a
client would receive it, and prints the archive's size, the throughput and the peak memory
Python allocated meanwhile (tracemalloc), which should stay near one read buffer (1 MiB) however
large the archive.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from imaging.download import zip_stream  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--mib", type=int, default=5)
    args = parser.parse_args()
    payload = os.urandom(args.mib * 1024 * 1024)  # one buffer, handed out for every file
    files = ((f"STUDY01/SERIES01/IM{n:05d}.dcm", lambda: io.BytesIO(payload)) for n in range(args.files))
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    total = 0
    for piece in zip_stream(files):
        total += len(piece)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    print(f"archive: {args.files} files, {total / 2**20:,.0f} MiB")
    print(f"time: {elapsed:.2f} s ({total / 2**20 / elapsed:,.0f} MiB/s)")
    print(f"peak memory allocated while streaming: {peak / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
