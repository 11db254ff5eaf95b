"""gunicorn as the image runs it (``deploy/secondread.sh web``), and as the CI smoke test runs it.

Stateless: every request may reach any replica (sessions and data in PostgreSQL, files in S3).
"""

import os

bind = [f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# Uploads stream in chunks; no single request should take longer than this.
timeout = 120
graceful_timeout = 25  # under Kubernetes' 30 s termination grace period
keepalive = 75  # longer than Caddy's idle upstream connections, so it never races a close
# The worker heartbeat files live in memory, not on the (read-only) root filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# One JSON line per request: the path without its query string (queue filters, signed-URL
# tokens), the client's real address (REMOTE_ADDR, rewritten by config.proxy behind Caddy).
accesslog = "-"
access_log_format = (
    '{"access": "%(m)s %(U)s", "status": %(s)s, "ms": %(M)s, "bytes": "%(B)s", "client": "%(h)s"}'
)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# X-Forwarded-Proto is judged by Django (SECURE_PROXY_SSL_HEADER, behind TRUSTED_PROXIES), not
# gunicorn: accept it from anyone here so gunicorn does not strip it.
forwarded_allow_ips = "*"


# Prometheus metrics on METRICS_PORT, served by this (master) process from the files every
# worker writes to PROMETHEUS_MULTIPROC_DIR (set by deploy/secondread.sh); see config.metrics.
def when_ready(server: object) -> None:
    port = int(os.environ.get("METRICS_PORT") or 0)
    if port:
        from config.metrics import serve_metrics

        serve_metrics(port, os.environ.get("METRICS_TOKEN", ""))


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
