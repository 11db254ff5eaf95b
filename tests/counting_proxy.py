"""A TCP proxy on loopback that counts the bytes a server sends back: how tests and benchmarks
measure what the S3 backend really fetched from the object store (moto), on the wire, whatever
the client library does with it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class CountingProxy:
    """Forwards every connection made to ``address`` to ``target`` (``host:port``), and adds up
    the bytes that come back from the target (HTTP headers and bodies) in :attr:`received`."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._received = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="counting-proxy").start()

    @property
    def received(self) -> int:
        with self._lock:
            return self._received

    def reset(self) -> None:
        with self._lock:
            self._received = 0

    def close(self) -> None:
        self._listener.close()
        for sock in list(self._open):
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._target)
            self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while data := source.recv(256 * 1024):
                if counted:
                    with self._lock:
                        self._received += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def counting_proxy(target: str) -> Iterator[CountingProxy]:
    proxy = CountingProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()
