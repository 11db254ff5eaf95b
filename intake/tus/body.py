"""Reading a tus chunk from gunicorn's socket straight into the part buffer.

Through the WSGI input, gunicorn hands each piece of a request body over in new ``bytes``
objects, copied between its buffers on the way (a ``BytesIO`` in its unreader, another in
its body, slices of both): measured under gunicorn gthread, those copies cost the web process
more CPU than receiving the bytes from the socket and writing them to disk
(``tests/benchmarks/bench_upload_cpu.py``). A folder drop shares two cores with the browser
and the ingest worker, so that CPU is wall time. :class:`SocketBody` reads the body with
``recv_into`` into the caller's buffer instead: one copy, as a plain socket server makes.

It relies on how gunicorn keeps a body of known length (``Body`` → ``LengthReader`` →
``SocketUnreader`` over ``environ["gunicorn.socket"]``), checked before anything is touched:
with any other server, another gunicorn, or a body something already read from, the caller
reads ``request`` as before.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Mapping
from typing import Any, cast


class SocketBody:
    """The rest of one request body: first the bytes gunicorn already received, then the socket.

    Keeps gunicorn's own count of the body's unread bytes up to date, so after the response
    gunicorn reads (and discards) exactly what the application left, and the next request on
    the connection starts where it should. A dropped connection marks the body failed, as
    gunicorn's own reads do, so that connection is never reused.
    """

    def __init__(self, *, body: Any, reader: Any, sock: socket.socket, held: bytes) -> None:
        self._body = body
        self._reader = reader
        self._sock = sock
        self._held = memoryview(held)

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], length: int) -> SocketBody | None:
        """The body of this request of ``length`` bytes read from gunicorn's socket, or None
        if it cannot be (not gunicorn, chunked, or not where gunicorn keeps it)."""
        # gunicorn's objects, typed as what they are to us: checked by their shape below.
        body: Any = environ.get("wsgi.input")
        sock = environ.get("gunicorn.socket")
        reader: Any = getattr(body, "reader", None)
        unreader: Any = getattr(reader, "unreader", None)
        if not isinstance(sock, socket.socket):
            return None
        if (
            type(reader).__name__ != "LengthReader"
            or getattr(unreader, "sock", None) is not sock
            or not isinstance(getattr(body, "buf", None), io.BytesIO)
            or not isinstance(getattr(unreader, "buf", None), io.BytesIO)
            or not isinstance(getattr(reader, "length", None), int)
        ):
            return None
        read_ahead = body.buf.getvalue()
        if len(read_ahead) + reader.length != length:
            return None  # some of the body was read already: leave it to the WSGI input
        # The unreader may hold bytes past this body too (a client pipelining its next
        # request): only this body's are taken, the rest stays for gunicorn's parser.
        received = unreader.buf.getvalue()
        own = received[: reader.length]
        body.buf = io.BytesIO()
        unreader.buf = io.BytesIO()
        unreader.buf.write(received[len(own) :])
        reader.length -= len(own)
        return cls(body=body, reader=reader, sock=cast(socket.socket, sock), held=read_ahead + own)

    def readinto(self, target: memoryview | bytearray) -> int:
        """Fill the start of ``target`` with the next bytes of the body; return how many
        (0 at the end of the body, or when the client closed the connection)."""
        if self._held:
            count = min(len(target), len(self._held))
            target[:count] = self._held[:count]
            self._held = self._held[count:]
            return count
        wanted = min(len(target), self._reader.length)
        if wanted <= 0:
            return 0
        try:
            count = self._sock.recv_into(target, wanted)
        except OSError:
            self._body.failed = True
            raise
        if count == 0:
            self._body.failed = True  # the client went away before the end of the body
        self._reader.length -= count
        return count

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (a small read; the chunk itself goes through readinto)."""
        buffer = bytearray(size if size >= 0 else self._reader.length + len(self._held))
        count = self.readinto(memoryview(buffer))
        return bytes(buffer[:count])
