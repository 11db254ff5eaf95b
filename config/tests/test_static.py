"""Content-hashed static files are cached for a year; others are revalidated."""

from __future__ import annotations

from config.static import immutable_file_test


def test_it_caches_content_hashed_files_forever() -> None:
    assert immutable_file_test("", "/static/css/app.24870ce0cbbb.css")
    assert immutable_file_test("", "/static/dist/chunk-AUB4MEWL.js")
    assert immutable_file_test("", "/static/dist/app-XQWCFAHL.js.map")


def test_it_revalidates_files_whose_name_does_not_change() -> None:
    assert not immutable_file_test("", "/static/css/app.css")
    assert not immutable_file_test("", "/static/dist/viewer.js")
    assert not immutable_file_test("", "/static/dist/wasm/openjphjs.wasm")
