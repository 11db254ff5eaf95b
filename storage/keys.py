"""Validation of storage keys.

Keys are plain ``/``-separated strings such as ``"acme/intake/uploads/3f2a..."``. They end up as
filesystem paths and S3 object names, so anything that could escape a tenant's folder or alias
another key is refused here, once, for both backends.

Keys must be opaque identifiers (UUIDs and fixed folder names), never names derived from patient
data: they appear in signed URLs, in S3 access logs and in exception messages of the backends.
"""

import re

# A segment starting with "." is refused as well as ".." itself: the filesystem backend keeps its
# temporary files and multipart staging under dot-names, and they must never be addressable.
_FORBIDDEN_CHARS = re.compile(r"[\\\x00\r\n]")


class InvalidKey(ValueError):
    """A key or prefix that could escape its folder or alias another key."""


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is safe, else raise :class:`InvalidKey`.

    A safe key is non-empty, relative, has no backslash, NUL or line break, no empty segment
    (``a//b``, trailing ``/``) and no segment starting with a dot (``.``, ``..``, ``.tmp``).
    The message never repeats the key: it may have come from user input.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("Storage key must be a non-empty string.")
    if key.startswith("/"):
        raise InvalidKey("Storage key must be relative.")
    if _FORBIDDEN_CHARS.search(key):
        raise InvalidKey("Storage key contains a forbidden character.")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey("Storage key has an empty segment.")
        if segment.startswith("."):
            raise InvalidKey("Storage key has a segment starting with a dot.")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` without a trailing ``/``; ``""`` means everything.

    A prefix names a folder: ``list_keys("a/b")`` finds ``a/b/c`` but not ``a/bc``. Apart from
    the empty prefix and one optional trailing slash, the rules of :func:`validate_key` apply.
    """
    if prefix == "":
        return ""
    return validate_key(prefix[:-1] if prefix.endswith("/") else prefix)


def join(*parts: str) -> str:
    """Join already-validated key parts, skipping empty ones (the empty prefix)."""
    return "/".join(part for part in parts if part)
