"""Django's database sessions, with the session's row read by a statement compiled once.

Every request of a signed-in user reads its session row; under a folder drop that is every tus
request (issue 13). The statement, the row and what is done with it are Django's own
(``django.contrib.sessions.backends.db``): only the compiling of the SELECT is done once per
connection (``tenants.prepared``) instead of on every request. Sessions stay rows in the
database, so deleting them (sign-out everywhere, ``review.staff_accounts``) and their expiry
take effect on the next request, as before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.backends import RENAMED_BACKENDS
from tenants.prepared import PreparedSelect

_LIVE_SESSION = PreparedSelect(
    lambda key, now: Session.objects.filter(session_key=key, expire_date__gt=now)[:1],
    "prepared-marker",
    datetime(2000, 1, 1, tzinfo=UTC),
)


class SessionStore(DatabaseSessionStore):
    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = super().load()
        # A session signed in before accounts.backends named the backend it now is.
        backend = data.get(BACKEND_SESSION_KEY)
        if backend in RENAMED_BACKENDS:
            data[BACKEND_SESSION_KEY] = RENAMED_BACKENDS[backend]
        return data

    def _get_session_from_db(self) -> Session | None:
        session = _LIVE_SESSION.first(self.session_key, timezone.now())
        if session is None:
            self._session_key = None
        return session
