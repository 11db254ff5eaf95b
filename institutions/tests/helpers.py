"""Helpers for the onboarding tests: a verified applicant on the platform domain, and images."""

from __future__ import annotations

import io
import re
import struct
import zlib
from urllib.parse import urlsplit

from django.core import mail
from django.test import Client
from PIL import Image

PASSWORD = "a-long-Passphrase-42"


def confirmation_path(*, to: str) -> str:
    message = next(m for m in reversed(mail.outbox) if to in m.to)
    match = re.search(r"https?://\S+/start/confirm/\S+/", str(message.body))
    assert match, message.body
    return urlsplit(match.group(0)).path


def applicant_sign_up(
    client: Client, captured: object, *, email: str, name: str = "St Mary's Hospital"
) -> None:
    with captured(execute=True):  # type: ignore[operator]
        response = client.post(
            "/start/",
            {
                "institution_name": name,
                "full_name": "Ada Admin",
                "email": email,
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    assert response.status_code == 200, response.content.decode()[:2000]
    client.get(confirmation_path(to=email))


def png_bytes(size: tuple[int, int] = (64, 64), colour: str = "#224488") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def png_bomb(side: int = 30000) -> bytes:
    """A valid, tiny PNG that declares side × side pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
