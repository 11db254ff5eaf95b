"""File-like objects for tests: generated content, failures midway."""

import hashlib
import io
import random
from typing import BinaryIO, cast


class GeneratedStream(io.RawIOBase):
    """``size`` pseudo-random bytes made on the fly: the test never holds the whole content.

    ``sha256`` is the digest of what has been read so far; ``fail_after``, if set, makes the
    stream raise ``OSError`` once that many bytes have been produced (a dropped connection).
    """

    def __init__(self, size: int, *, seed: int = 0, fail_after: int | None = None) -> None:
        super().__init__()
        self._remaining = size
        self._produced = 0
        self._random = random.Random(seed)  # noqa: S311 - test data, not secrets
        self._fail_after = fail_after
        self._digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        if self._fail_after is not None and self._produced >= self._fail_after:
            raise OSError("connection dropped")
        count = min(len(buffer), self._remaining, 256 * 1024)
        data = self._random.randbytes(count)
        buffer[:count] = data
        self._digest.update(data)
        self._remaining -= count
        self._produced += count
        return count

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def generated(size: int, *, seed: int = 0, fail_after: int | None = None) -> BinaryIO:
    """A :class:`GeneratedStream` typed as the ``BinaryIO`` the storage API takes."""
    return cast(BinaryIO, GeneratedStream(size, seed=seed, fail_after=fail_after))


def sha256_of(size: int, *, seed: int = 0) -> str:
    """The digest a ``generated(size, seed=seed)`` stream will have once fully read."""
    stream = GeneratedStream(size, seed=seed)
    while stream.read(1024 * 1024):
        pass
    return stream.sha256
