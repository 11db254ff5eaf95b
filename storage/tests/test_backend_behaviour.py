"""What every backend must do alike; each test runs against the filesystem and against S3."""

import hashlib
import io
import tracemalloc

import pytest

from storage.base import MiB, MultipartError, ObjectNotFound, StorageBackend
from storage.keys import InvalidKey
from storage.tests.streams import GeneratedStream, generated, sha256_of


def test_it_saves_and_reads_back(backend: StorageBackend) -> None:
    written = backend.save("acme/uploads/a1", io.BytesIO(b"hello"), 5)

    assert written == 5
    assert backend.read_bytes("acme/uploads/a1") == b"hello"
    assert backend.exists("acme/uploads/a1")
    assert backend.size("acme/uploads/a1") == 5


def test_it_saves_an_empty_object(backend: StorageBackend) -> None:
    assert backend.save("acme/empty", io.BytesIO(b"")) == 0

    assert backend.exists("acme/empty")
    assert backend.read_bytes("acme/empty") == b""


def test_it_replaces_an_existing_object(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"first version"))
    backend.save("acme/k", io.BytesIO(b"second"))

    assert backend.read_bytes("acme/k") == b"second"


def test_it_reads_in_chunks(backend: StorageBackend) -> None:
    backend.save("acme/k", generated(3 * MiB + 7))

    with backend.open("acme/k") as reader:
        pieces = list(reader.chunks(MiB))

    assert [len(piece) for piece in pieces] == [MiB, MiB, MiB, 7]
    assert hashlib.sha256(b"".join(pieces)).hexdigest() == sha256_of(3 * MiB + 7)


def test_it_raises_object_not_found(backend: StorageBackend) -> None:
    with pytest.raises(ObjectNotFound):
        backend.open("acme/missing")
    with pytest.raises(ObjectNotFound):
        backend.size("acme/missing")
    assert not backend.exists("acme/missing")


def test_it_deletes_idempotently(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"x"))

    backend.delete("acme/k")
    backend.delete("acme/k")

    assert not backend.exists("acme/k")


def test_it_lists_keys_under_a_folder_only(backend: StorageBackend) -> None:
    for key in ["acme/a/1", "acme/a/2", "acme/a/deep/3", "acme/ab/4", "other/a/5"]:
        backend.save(key, io.BytesIO(b"12345"))

    assert sorted(backend.list_keys("acme/a")) == ["acme/a/1", "acme/a/2", "acme/a/deep/3"]
    assert sorted(backend.list_keys("acme/a/")) == ["acme/a/1", "acme/a/2", "acme/a/deep/3"]
    assert list(backend.list_keys("acme/nothing")) == []
    assert len(list(backend.list_keys(""))) == 5
    assert backend.total_size("acme") == 20
    assert backend.total_size("acme/ab") == 5


def test_it_deletes_a_folder(backend: StorageBackend) -> None:
    for key in ["acme/a/1", "acme/a/deep/2", "acme/ab/3"]:
        backend.save(key, io.BytesIO(b"x"))

    assert backend.delete_prefix("acme/a") == 2

    assert list(backend.list_keys("acme")) == ["acme/ab/3"]


def test_it_refuses_to_delete_everything(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"x"))

    with pytest.raises(InvalidKey):
        backend.delete_prefix("")

    assert backend.exists("acme/k")


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a\\b", "a/../b", "a/./b", "a\x00b", "", "a/"])
def test_it_refuses_unsafe_keys(backend: StorageBackend, key: str) -> None:
    with pytest.raises(InvalidKey):
        backend.save(key, io.BytesIO(b"x"))
    with pytest.raises(InvalidKey):
        backend.exists(key)


def test_it_leaves_nothing_when_the_stream_fails_midway(backend: StorageBackend) -> None:
    # Fails after 12 MiB: past the first S3 part, so S3 is mid multipart upload.
    with pytest.raises(OSError, match="connection dropped"):
        backend.save("acme/k", generated(20 * MiB, fail_after=12 * MiB))

    assert not backend.exists("acme/k")
    assert list(backend.list_keys("")) == []


def test_it_keeps_the_previous_version_when_a_replacement_fails(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"good"))

    with pytest.raises(OSError):
        backend.save("acme/k", generated(MiB, fail_after=256 * 1024))

    assert backend.read_bytes("acme/k") == b"good"


@pytest.mark.parametrize("declared", [4, 6])
def test_it_refuses_a_stream_of_the_wrong_length(backend: StorageBackend, declared: int) -> None:
    with pytest.raises(ValueError, match="length"):
        backend.save("acme/k", io.BytesIO(b"hello"), declared)

    assert not backend.exists("acme/k")


def test_it_streams_a_large_file_in_bounded_memory(backend: StorageBackend) -> None:
    size = 64 * MiB
    tracemalloc.start()
    try:
        assert backend.save("acme/big", generated(size, seed=7)) == size
        digest = hashlib.sha256()
        with backend.open("acme/big") as reader:
            for chunk in reader.chunks():
                digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert digest.hexdigest() == sha256_of(size, seed=7)
    assert backend.size("acme/big") == size
    assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"


def test_it_assembles_a_multipart_upload(backend: StorageBackend) -> None:
    sizes = [5 * MiB, 5 * MiB, 123]
    upload_id = backend.multipart_start("acme/parts")
    parts = [
        (number, backend.multipart_put("acme/parts", upload_id, number, generated(n, seed=number), n))
        for number, n in enumerate(sizes, start=1)
    ]
    assert not backend.exists("acme/parts")

    # Given out of order on purpose: the backend sorts them.
    size = backend.multipart_complete("acme/parts", upload_id, list(reversed(parts)))

    expected = hashlib.sha256()
    for number, part_size in enumerate(sizes, start=1):
        expected.update(GeneratedStream(part_size, seed=number).readall())
    assert size == sum(sizes)
    with backend.open("acme/parts") as reader:
        actual = hashlib.sha256()
        for chunk in reader.chunks():
            actual.update(chunk)
    assert actual.hexdigest() == expected.hexdigest()
    assert list(backend.list_keys("")) == ["acme/parts"]


def test_it_replaces_a_retried_part(backend: StorageBackend) -> None:
    upload_id = backend.multipart_start("acme/k")
    backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"stale"), 5)
    etag = backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"fresh"), 5)

    backend.multipart_complete("acme/k", upload_id, [(1, etag)])

    assert backend.read_bytes("acme/k") == b"fresh"


def test_it_refuses_a_small_part_before_the_last(backend: StorageBackend) -> None:
    upload_id = backend.multipart_start("acme/k")
    first = backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"tiny"), 4)
    second = backend.multipart_put("acme/k", upload_id, 2, io.BytesIO(b"last"), 4)

    with pytest.raises(MultipartError):
        backend.multipart_complete("acme/k", upload_id, [(1, first), (2, second)])

    assert not backend.exists("acme/k")
    backend.multipart_abort("acme/k", upload_id)


def test_it_refuses_a_wrong_etag(backend: StorageBackend) -> None:
    upload_id = backend.multipart_start("acme/k")
    backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"data"), 4)

    with pytest.raises(MultipartError):
        backend.multipart_complete("acme/k", upload_id, [(1, "0" * 32)])

    assert not backend.exists("acme/k")


def test_it_aborts_a_multipart_upload_leaving_nothing(backend: StorageBackend) -> None:
    upload_id = backend.multipart_start("acme/k")
    backend.multipart_put("acme/k", upload_id, 1, io.BytesIO(b"data"), 4)

    backend.multipart_abort("acme/k", upload_id)
    backend.multipart_abort("acme/k", upload_id)  # idempotent

    assert not backend.exists("acme/k")
    assert list(backend.list_keys("")) == []


def test_it_passes_its_health_check(backend: StorageBackend) -> None:
    assert backend.health_check() is True

    assert list(backend.list_keys("")) == []


def test_it_moves_an_object_to_a_new_key(backend: StorageBackend) -> None:
    backend.save("acme/uploads/u1", io.BytesIO(b"the scan"))
    backend.save("acme/dicom/old", io.BytesIO(b"to be replaced"))

    backend.move("acme/uploads/u1", "acme/dicom/new/i1")
    backend.move("acme/dicom/new/i1", "acme/dicom/old")

    assert backend.read_bytes("acme/dicom/old") == b"the scan"
    assert not backend.exists("acme/uploads/u1")
    assert not backend.exists("acme/dicom/new/i1")
    assert sorted(backend.list_keys("acme")) == ["acme/dicom/old"]


def test_it_moves_a_large_object_whole(backend: StorageBackend) -> None:
    backend.save("acme/big", generated(6 * MiB + 3))

    backend.move("acme/big", "acme/moved/big")

    with backend.open("acme/moved/big") as reader:
        assert hashlib.sha256(b"".join(reader.chunks())).hexdigest() == sha256_of(6 * MiB + 3)
    assert not backend.exists("acme/big")


def test_it_refuses_to_move_a_missing_object(backend: StorageBackend) -> None:
    backend.save("acme/dst", io.BytesIO(b"kept"))

    with pytest.raises(ObjectNotFound):
        backend.move("acme/missing", "acme/dst")

    assert backend.read_bytes("acme/dst") == b"kept"


def test_it_moves_an_object_onto_itself_harmlessly(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"same"))

    backend.move("acme/k", "acme/k")

    assert backend.read_bytes("acme/k") == b"same"


@pytest.mark.parametrize("key", ["../escape", "acme/../../etc/passwd", "/abs", ""])
def test_it_refuses_to_move_to_or_from_unsafe_keys(backend: StorageBackend, key: str) -> None:
    backend.save("acme/k", io.BytesIO(b"x"))

    with pytest.raises(InvalidKey):
        backend.move("acme/k", key)
    with pytest.raises(InvalidKey):
        backend.move(key, "acme/k")

    assert backend.read_bytes("acme/k") == b"x"


def test_it_reads_a_range(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"0123456789"))

    assert backend.read_range("acme/k", 2, 5) == b"23456"
    assert backend.read_range("acme/k", 0, 10) == b"0123456789"
    assert backend.read_range("acme/k", 8, 100) == b"89"  # fewer where the object ends
    assert backend.read_range("acme/k", 10, 4) == b""
    assert backend.read_range("acme/k", 50, 4) == b""
    assert backend.read_range("acme/k", 3, 0) == b""
    with pytest.raises(ObjectNotFound):
        backend.read_range("acme/missing", 0, 4)
    with pytest.raises(ObjectNotFound):
        backend.read_range("acme/missing", 0, 0)
    with pytest.raises(ValueError):
        backend.read_range("acme/k", -1, 4)


def test_it_opens_a_range_as_a_stream_of_its_own(backend: StorageBackend) -> None:
    backend.save("acme/k", generated(3 * MiB + 7))
    whole = backend.read_bytes("acme/k")

    with backend.open_range("acme/k", MiB + 5, 2 * MiB) as reader:
        assert reader.read() == whole[MiB + 5 : 3 * MiB + 5]  # the range only, not to the end
    with backend.open_range("acme/k", 3 * MiB, 100) as reader:
        assert reader.read() == whole[3 * MiB :]  # fewer where the object ends
    with backend.open_range("acme/k", 3 * MiB + 7, 4) as reader:
        assert reader.read() == b""
    with pytest.raises(ObjectNotFound):
        backend.open_range("acme/missing", 10, 4)
    with pytest.raises(ValueError):
        backend.open_range("acme/k", -1, 4)


def test_a_range_seeks_within_itself_where_the_backend_can(backend: StorageBackend) -> None:
    backend.save("acme/k", io.BytesIO(b"header|0123456789|trailer"))

    with backend.open_range("acme/k", 7, 10) as reader:
        if not reader.seekable():  # S3: a ranged GET, streamed; readers copy it to seek
            assert reader.read() == b"0123456789"
            return
        assert reader.read(3) == b"012"
        reader.seek(0)
        assert reader.read() == b"0123456789"
        reader.seek(-2, io.SEEK_END)
        assert reader.read(100) == b"89"
        assert reader.tell() == 10


def test_it_opens_a_range_for_seeking_on_every_backend(backend: StorageBackend) -> None:
    backend.save("acme/k", generated(3 * MiB + 7))
    whole = backend.read_bytes("acme/k")
    start, length = MiB + 3, MiB + 100

    with backend.open_seekable("acme/k", offset=start, length=length) as reader:
        assert reader.seekable()
        reader.seek(MiB)
        assert reader.read(10) == whole[start + MiB : start + MiB + 10]
        reader.seek(-4, io.SEEK_END)
        assert reader.read(100) == whole[start + length - 4 : start + length]  # not past the range
        assert reader.tell() == length
    with backend.open_seekable("acme/k", offset=3 * MiB, length=100) as reader:
        assert reader.read() == whole[3 * MiB :]  # fewer where the object ends


def test_it_opens_a_large_object_for_seeking(backend: StorageBackend) -> None:
    backend.save("acme/k", generated(3 * MiB + 7))
    whole = backend.read_bytes("acme/k")

    with backend.open_seekable("acme/k") as reader:
        reader.seek(2 * MiB + 3)
        assert reader.read(10) == whole[2 * MiB + 3 : 2 * MiB + 13]
        reader.seek(5)
        assert reader.read(4) == whole[5:9]
        reader.seek(-7, io.SEEK_END)
        assert reader.read() == whole[-7:]
        assert reader.tell() == 3 * MiB + 7
