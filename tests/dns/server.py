"""A real DNS server on loopback (dnslib) answering from a zone the test edits."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, TXT
from dnslib.server import DNSServer

from tests.serving import serve_in_thread


class ZoneResolver:
    """Answers CNAME and TXT questions from ``records``: {(name, "CNAME"|"TXT"): [values]}."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.questions: list[tuple[str, str]] = []

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.questions.append((name, qtype))
        values = self.records.get((name, qtype), [])
        for value in values:
            rdata = CNAME(value + ".") if qtype == "CNAME" else TXT(value)
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, qtype), rdata=rdata, ttl=60))
        if not values and not any(key[0] == name for key in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def dns_server() -> Iterator[tuple[ZoneResolver, int]]:
    resolver = ZoneResolver()
    port = free_udp_port()
    server = DNSServer(resolver, port=port, address="127.0.0.1", logger=_Quiet())
    serve_in_thread(server.server)
    try:
        yield resolver, port
    finally:
        server.stop()


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
