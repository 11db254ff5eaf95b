"""What only the filesystem backend does: hidden temp files and staging, upload ids bound to keys."""

import io
from datetime import timedelta
from pathlib import Path

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
