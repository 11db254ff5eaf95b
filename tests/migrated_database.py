"""A migrated test database kept between test runs, so the quick loop does not migrate again.

Migrating the public schema and the institutions' template schema is most of a test session's
start (about 25 s on a loaded 2-core machine; the demo seed clones its institutions from the
template). The first run on a server migrates as usual and keeps a copy of the result as a
PostgreSQL database named after a digest of everything migrations depend on: every migration file
of the project and the versions of the installed packages (their migrations). A later run with
the same digest creates its test database from that copy (``CREATE DATABASE … TEMPLATE``, well
under a second) and then seeds as usual, so only the schemas' structure is reused, never data
or files. A change to any migration or package gives a new digest: that run migrates afresh and
replaces the copy. A fresh server (CI's embedded PostgreSQL) simply has no copy yet.

Several checkouts may share one server (worktrees, a branch with a new migration, a colleague's
run): each keeps its own copy, and only the oldest copies beyond ``COPIES_KEPT`` are removed, so
two checkouts no longer remove each other's copy and migrate afresh on every run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from contextlib import suppress
from pathlib import Path

from django.db import DatabaseError, connection

PREFIX = "test_migrated_"
ROOT = Path(__file__).resolve().parent.parent
# Copies of a few checkouts' migrations (about 15 MB each).
COPIES_KEPT = 4


def migrations_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    # Not the project itself: its migrations are above, and whether a checkout has its own
    # secondread.egg-info (pip install -e from that folder) must not change the digest.
    packages = sorted(
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] != "secondread"
    )
    digest.update("\n".join(packages).encode())
    return digest.hexdigest()[:16]


def _copy_name() -> str:
    return PREFIX + migrations_digest()


def _server(sql: str) -> None:
    """Run one statement on the server's maintenance database (not the test database)."""
    with connection._nodb_cursor() as cursor:
        cursor.execute(sql)


def migrated_copy_restore(test_database: str) -> bool:
    """Create ``test_database`` from the kept copy; False (nothing created) if there is none,
    or it is being written or removed by another run just now."""
    try:
        _server(f'CREATE DATABASE "{test_database}" TEMPLATE "{_copy_name()}"')
    except DatabaseError:
        return False
    return True


def copies_stale(copies_newest_first: list[str], copy: str) -> list[str]:
    """The copies to remove when keeping ``copy``: other checkouts' beyond the newest few."""
    others = [name for name in copies_newest_first if name != copy]
    return others[COPIES_KEPT - 1 :]


def migrated_copy_keep(test_database: str) -> None:
    """Keep a copy of the freshly migrated ``test_database`` (nothing else may be connected to
    it), and remove the oldest copies made for other migrations beyond ``COPIES_KEPT``. Best
    effort: another run may be doing the same at this moment."""
    connection.close()
    copy = _copy_name()
    with connection._nodb_cursor() as cursor:
        # Newest first: a database's oid grows with each one created.
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY oid DESC", [PREFIX + "%"]
        )
        copies = [name for (name,) in cursor.fetchall()]
    for name in copies_stale(copies, copy):
        with suppress(DatabaseError):  # another run is creating its test database from it
            _server(f'DROP DATABASE IF EXISTS "{name}"')
    with suppress(DatabaseError):  # another run kept the same copy first
        _server(f'CREATE DATABASE "{copy}" TEMPLATE "{test_database}"')


def test_database_drop(test_database: str) -> None:
    """Drop a test database this run created from the copy (pytest-django only drops the
    databases it created itself)."""
    connection.close()
    _server(f'DROP DATABASE IF EXISTS "{test_database}" WITH (FORCE)')
