"""The test doubles' servers on loopback (an identity provider, FHIR, Stripe, DNS, OTLP), each
served from a daemon thread of the test process."""

from __future__ import annotations

import socketserver
import threading

# socketserver looks for a shutdown() every 0.5 s by default, so stopping a double after each
# test waited up to half a second for nothing (about 20 s of a quick run); a loopback double
# polled every 20 ms costs nothing measurable while it serves.
SHUTDOWN_POLL_SECONDS = 0.02


def serve_in_thread(server: socketserver.BaseServer) -> threading.Thread:
    """Serve ``server`` from a daemon thread until ``server.shutdown()``."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS}, daemon=True
    )
    thread.start()
    return thread
