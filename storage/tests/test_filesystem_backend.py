"""What only the filesystem backend does: hidden temp files and staging, upload ids bound to keys."""

import hashlib
import io
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from storage.base import MiB, MultipartError
from storage.filesystem import FilesystemBackend
from storage.tests.streams import generated


def _all_files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_it_stores_objects_as_files_under_the_root(filesystem_backend: FilesystemBackend) -> None:
    filesystem_backend.save("acme/uploads/a1", io.BytesIO(b"hello"))

    assert (filesystem_backend.root / "acme" / "uploads" / "a1").read_bytes() == b"hello"


def test_it_leaves_no_temp_file_after_a_failed_save(filesystem_backend: FilesystemBackend) -> None:
    with pytest.raises(OSError):
        filesystem_backend.save("acme/k", generated(4 * MiB, fail_after=2 * MiB))

    assert _all_files(filesystem_backend.root) == []


def test_it_hides_multipart_staging_from_listings(filesystem_backend: FilesystemBackend) -> None:
    upload_id = filesystem_backend.multipart_start("acme/k")
    filesystem_backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"data"), 4)

    assert list(filesystem_backend.list_keys("")) == []
    assert filesystem_backend.total_size("") == 0


def test_it_cleans_staging_after_complete_and_abort(filesystem_backend: FilesystemBackend) -> None:
    completed = filesystem_backend.multipart_start("acme/done")
    etag = filesystem_backend.multipart_put("acme/done", completed, 1, io.BytesIO(b"data"), 4)
    filesystem_backend.multipart_complete("acme/done", completed, [(1, etag)])
    aborted = filesystem_backend.multipart_start("acme/gone")
    filesystem_backend.multipart_put("acme/gone", aborted, 1, io.BytesIO(b"data"), 4)
    filesystem_backend.multipart_abort("acme/gone", aborted)

    assert _all_files(filesystem_backend.root) == ["acme/done"]


def test_it_refuses_an_upload_id_started_for_another_key(
    filesystem_backend: FilesystemBackend,
) -> None:
    upload_id = filesystem_backend.multipart_start("acme/k")
    etag = filesystem_backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"data"), 4)

    with pytest.raises(MultipartError):
        filesystem_backend.multipart_put("other/k", upload_id, 2, io.BytesIO(b"data"), 4)
    with pytest.raises(MultipartError):
        filesystem_backend.multipart_complete("other/k", upload_id, [(1, etag)])
    filesystem_backend.multipart_abort("other/k", upload_id)  # ignored: not its upload

    assert filesystem_backend.multipart_complete("acme/k", upload_id, [(1, etag)]) == 4


@pytest.mark.parametrize("upload_id", ["../../acme", "not-an-id", "0" * 32])
def test_it_refuses_unknown_upload_ids(filesystem_backend: FilesystemBackend, upload_id: str) -> None:
    with pytest.raises(MultipartError):
        filesystem_backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"data"), 4)


def test_it_refuses_completing_an_aborted_upload(filesystem_backend: FilesystemBackend) -> None:
    upload_id = filesystem_backend.multipart_start("acme/k")
    etag = filesystem_backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"data"), 4)
    filesystem_backend.multipart_abort("acme/k", upload_id)

    with pytest.raises(MultipartError):
        filesystem_backend.multipart_complete("acme/k", upload_id, [(1, etag)])


def test_it_removes_emptied_folders(filesystem_backend: FilesystemBackend) -> None:
    filesystem_backend.save("acme/a/b/c", io.BytesIO(b"x"))

    filesystem_backend.delete_prefix("acme/a")

    assert not (filesystem_backend.root / "acme" / "a").exists()


def test_it_has_no_presigned_put_url(filesystem_backend: FilesystemBackend) -> None:
    assert filesystem_backend.presigned_put_url("acme/k", expires=timedelta(minutes=5)) is None


# -- multipart parts written in place (see "multipart uploads" in storage/filesystem.py) ----------

PART = 5 * MiB


def _put(backend: FilesystemBackend, upload_id: str, number: int, *, seed: int, size: int = PART) -> str:
    return backend.multipart_put("acme/big", upload_id, number, generated(size, seed=seed), size)


def _expected(*pieces: tuple[int, int]) -> bytes:
    return b"".join(generated(size, seed=seed).read() for seed, size in pieces)


def test_it_completes_parts_sent_in_order_without_copying_them(filesystem_backend: FilesystemBackend) -> None:
    upload_id = filesystem_backend.multipart_start("acme/big")
    parts = [(number, _put(filesystem_backend, upload_id, number, seed=number)) for number in (1, 2)]
    parts.append((3, _put(filesystem_backend, upload_id, 3, seed=3, size=1000)))
    staged = (filesystem_backend.root / ".multipart" / upload_id / "data").stat().st_ino

    assert filesystem_backend.multipart_complete("acme/big", upload_id, parts) == 2 * PART + 1000

    stored = filesystem_backend.root / "acme" / "big"
    assert stored.stat().st_ino == staged  # renamed into place, not copied
    assert stored.read_bytes() == _expected((1, PART), (2, PART), (3, 1000))
    assert _all_files(filesystem_backend.root) == ["acme/big"]


def test_it_joins_a_part_put_again_and_parts_put_out_of_order(filesystem_backend: FilesystemBackend) -> None:
    upload_id = filesystem_backend.multipart_start("acme/big")
    third = _put(filesystem_backend, upload_id, 3, seed=3, size=10)  # before its predecessors
    first = _put(filesystem_backend, upload_id, 1, seed=1)
    stale = _put(filesystem_backend, upload_id, 2, seed=20)
    second = _put(filesystem_backend, upload_id, 2, seed=2)  # a retried part replaces the first try

    with pytest.raises(MultipartError):
        filesystem_backend.multipart_complete("acme/big", upload_id, [(1, first), (2, stale), (3, third)])
    size = filesystem_backend.multipart_complete("acme/big", upload_id, [(1, first), (2, second), (3, third)])

    assert size == 2 * PART + 10
    assert filesystem_backend.read_bytes("acme/big") == _expected((1, PART), (2, PART), (3, 10))
    assert _all_files(filesystem_backend.root) == ["acme/big"]


def test_it_leaves_out_a_part_put_but_not_listed(filesystem_backend: FilesystemBackend) -> None:
    upload_id = filesystem_backend.multipart_start("acme/big")
    first = _put(filesystem_backend, upload_id, 1, seed=1)
    last = _put(filesystem_backend, upload_id, 2, seed=2, size=100)
    _put(filesystem_backend, upload_id, 3, seed=3)  # say, a chunk that was refused afterwards

    assert filesystem_backend.multipart_complete("acme/big", upload_id, [(1, first), (2, last)]) == PART + 100
    assert filesystem_backend.read_bytes("acme/big") == _expected((1, PART), (2, 100))


def test_it_keeps_nothing_of_a_part_whose_stream_fails(filesystem_backend: FilesystemBackend) -> None:
    upload_id = filesystem_backend.multipart_start("acme/big")
    first = _put(filesystem_backend, upload_id, 1, seed=1)
    with pytest.raises(OSError):
        filesystem_backend.multipart_put("acme/big", upload_id, 2, generated(PART, fail_after=MiB), PART)
    second = _put(filesystem_backend, upload_id, 2, seed=2, size=50)

    filesystem_backend.multipart_complete("acme/big", upload_id, [(1, first), (2, second)])

    assert filesystem_backend.read_bytes("acme/big") == _expected((1, PART), (2, 50))


def test_it_refuses_to_complete_with_a_part_lost_in_a_crash(filesystem_backend: FilesystemBackend) -> None:
    """A record or bytes missing after a crash are a missing part, never wrong bytes joined."""
    staging = filesystem_backend.root / ".multipart"
    lost_record = filesystem_backend.multipart_start("acme/big")
    parts = [(n, _put(filesystem_backend, lost_record, n, seed=n)) for n in (1, 2)]
    (staging / lost_record / "part-00002.etag").unlink()
    lost_bytes = filesystem_backend.multipart_start("acme/big")
    more = [(n, _put(filesystem_backend, lost_bytes, n, seed=n)) for n in (1, 2)]
    os.truncate(staging / lost_bytes / "data", PART + 10)

    for upload_id, listed in ((lost_record, parts), (lost_bytes, more)):
        with pytest.raises(MultipartError):
            filesystem_backend.multipart_complete("acme/big", upload_id, listed)
    assert not filesystem_backend.exists("acme/big")


def test_it_never_mixes_two_puts_of_one_part(filesystem_backend: FilesystemBackend) -> None:
    """The first put of part 1 is still writing when a second put of it arrives: the second goes
    to a file of its own, and whichever finished last is the part."""
    upload_id = filesystem_backend.multipart_start("acme/big")
    halfway, release = threading.Event(), threading.Event()

    class Slow(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= MiB:
                halfway.set()
                release.wait(10)
            return super().read(MiB)

    slow = _expected((1, PART))
    etags: list[str] = []
    writer = threading.Thread(
        target=lambda: etags.append(
            filesystem_backend.multipart_put("acme/big", upload_id, 1, cast(BinaryIO, Slow(slow)), PART)
        )
    )
    writer.start()
    assert halfway.wait(10)
    early = _put(filesystem_backend, upload_id, 1, seed=9, size=10)
    release.set()
    writer.join()

    with pytest.raises(MultipartError):
        filesystem_backend.multipart_complete("acme/big", upload_id, [(1, early)])
    filesystem_backend.multipart_complete("acme/big", upload_id, [(1, etags[0])])
    assert filesystem_backend.read_bytes("acme/big") == slow


def test_it_completes_uploads_staged_before_parts_had_records(filesystem_backend: FilesystemBackend) -> None:
    """Uploads in progress across a deploy: a part file with a bare md5 beside it, or nothing."""
    upload_id = filesystem_backend.multipart_start("acme/big")
    staging = filesystem_backend.root / ".multipart" / upload_id
    content = _expected((1, PART)), b"tail"
    for number, data in enumerate(content, start=1):
        (staging / f"part-{number:05d}").write_bytes(data)
    digests = [hashlib.md5(data, usedforsecurity=False).hexdigest() for data in content]
    (staging / "part-00001.etag").write_text(digests[0], encoding="ascii")

    filesystem_backend.multipart_complete("acme/big", upload_id, list(enumerate(digests, start=1)))

    assert filesystem_backend.read_bytes("acme/big") == b"".join(content)
