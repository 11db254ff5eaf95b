"""Which static files may be cached forever (whitenoise's ``immutable_file_test``)."""

from __future__ import annotations

import re

# Django's ManifestStaticFilesStorage names: "app.24870ce0cbbb.css".
_MANIFEST_HASHED = re.compile(r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$")
# esbuild's code-split chunks carry a content hash in their name ("chunk-AUB4MEWL.js"), and
# entry bundles import them by that name, not by Django's hashed copy.
_ESBUILD_HASHED = re.compile(r"^/static/dist/[\w.]+-[A-Z0-9]{8}\.js(\.map)?$")


def immutable_file_test(path: str, url: str) -> bool:
    return bool(_MANIFEST_HASHED.search(url) or _ESBUILD_HASHED.match(url))
