"""Reading a chunk straight from gunicorn's socket (intake.tus.body), with gunicorn's own body
classes over a real socket pair: what gunicorn already received comes first, bytes of a next
request stay where gunicorn's parser looks for them, and a dropped connection ends the body.

The whole path through a live gunicorn is in test_tus_live.py.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader

from intake.tus.body import SocketBody


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def _gunicorn_body(
    server: socket.socket, length: int, received: bytes
) -> tuple[dict[str, Any], SocketUnreader]:
    """The WSGI environ gunicorn makes for a body of ``length`` bytes, where reading the
    request's head already took ``received`` (the start of the body, maybe more) off the socket."""
    unreader = SocketUnreader(server)
    unreader.unread(received)
    return {"wsgi.input": Body(LengthReader(unreader, length)), "gunicorn.socket": server}, unreader


def _read_all(body: SocketBody, piece: int) -> bytes:
    buffer = bytearray(piece)
    data = bytearray()
    while count := body.readinto(memoryview(buffer)):
        data += buffer[:count]
    return bytes(data)


def test_it_reads_what_gunicorn_received_first_then_the_socket(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    server, client = sockets
    content = os.urandom(300_000)
    environ, unreader = _gunicorn_body(server, len(content), content[:1000])
    # The rest, then a pipelined next request (sent meanwhile: more than a socket buffer holds).
    sender = threading.Thread(target=client.sendall, args=(content[1000:] + b"HEAD /next HTTP/1.1\r\n",))
    sender.start()
    body = SocketBody.from_environ(environ, len(content))
    assert body is not None
    assert _read_all(body, 64 * 1024) == content
    sender.join()
    # The next request's bytes were not taken: gunicorn's parser reads them next.
    assert unreader.read() == b"HEAD /next HTTP/1.1\r\n"
    assert environ["wsgi.input"].read(10) == b""  # nothing of this body left to drain


def test_it_leaves_a_next_request_gunicorn_read_ahead_in_its_buffer(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    server, _ = sockets
    content = os.urandom(5000)
    environ, unreader = _gunicorn_body(server, len(content), content + b"GET / HTTP/1.1\r\n")
    body = SocketBody.from_environ(environ, len(content))
    assert body is not None
    assert _read_all(body, 1024) == content
    assert unreader.read() == b"GET / HTTP/1.1\r\n"


def test_it_leaves_a_body_already_read_from_to_the_wsgi_input(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    server, client = sockets
    content = os.urandom(5000)
    environ, _ = _gunicorn_body(server, len(content), b"")
    client.sendall(content)
    assert environ["wsgi.input"].read(10) == content[:10]
    assert SocketBody.from_environ(environ, len(content)) is None
    assert environ["wsgi.input"].read(len(content)) == content[10:]


def test_it_is_not_used_under_other_servers() -> None:
    assert SocketBody.from_environ({"wsgi.input": object()}, 10) is None


def test_a_dropped_connection_ends_the_body_and_closes_the_connection(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    server, client = sockets
    environ, _ = _gunicorn_body(server, 10_000, b"x" * 100)
    client.sendall(b"y" * 900)
    client.close()
    body = SocketBody.from_environ(environ, 10_000)
    assert body is not None
    assert _read_all(body, 4096) == b"x" * 100 + b"y" * 900
    # gunicorn must not read a next request from this connection: it is closed after the answer.
    assert environ["wsgi.input"].failed is True
