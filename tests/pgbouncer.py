"""A real PgBouncer (Debian's package) in transaction mode in front of the test database."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.live import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass(frozen=True)
class PgBouncer:
    port: int
    server_connections: int

    def settings_dict(self) -> dict[str, Any]:
        """The test database's settings, pointed at this PgBouncer."""
        return {**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": str(self.port)}


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def pgbouncer_running(*, server_connections: int = 2) -> Iterator[PgBouncer]:
    """Start PgBouncer in transaction mode with ``server_connections`` server connections to
    the test database; stop it afterwards. Needs the Debian package (``./sr test`` installs it)."""
    if not Path(PGBOUNCER).exists():
        raise RuntimeError(
            "PgBouncer is not installed: run the tests with ./sr test, or apt-get install pgbouncer"
        )
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = db.get("PASSWORD") or ""
    host = db.get("HOST") or "127.0.0.1"
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="sr-pgbouncer-"))
    (folder / "users.txt").write_text(f"{_quoted(user)} {_quoted(password)}\n")
    target = f"host={host} port={db.get('PORT') or 5432} dbname={db['NAME']} user={user}"
    if password:
        target += f" password={password}"
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{db["NAME"]} = {target} pool_size={server_connections}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {server_connections}
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {folder / "pgbouncer.log"}
"""
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root. Against a server on a Unix socket (the embedded
        # PostgreSQL) it runs as the socket's owner, who can reach the socket's folder; else as
        # the postgres user Debian's package brings.
        account = pwd.getpwnam("postgres")
        if host.startswith("/"):
            server_socket = Path(host) / f".s.PGSQL.{db.get('PORT') or 5432}"
            account = pwd.getpwuid(server_socket.stat().st_uid)
        os.chown(folder, account.pw_uid, account.pw_gid)
        for child in folder.iterdir():
            os.chown(child, account.pw_uid, account.pw_gid)
        command[1:1] = ["-u", account.pw_name]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    log = (
                        (folder / "pgbouncer.log").read_text() if (folder / "pgbouncer.log").exists() else ""
                    )
                    raise RuntimeError(f"PgBouncer did not start: {output}{log}") from None
                time.sleep(0.1)
        yield PgBouncer(port=port, server_connections=server_connections)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
