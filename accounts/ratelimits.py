"""Rate limits of our own actions, on allauth's machinery (the same cache, the same settings).

Rates live in ``ACCOUNT_RATE_LIMITS`` (see ``SR_RATE_LIMITS`` in the settings), per client
address (``ip``: the real client, config.proxy), per account (``key``: an email) or per
signed-in user (``user``). Every attempt counts, right or wrong: a guesser is slowed the same.
"""

from __future__ import annotations

from allauth.core.internal import ratelimit
from django.http import HttpRequest
from django.utils.translation import gettext_noop

from accounts.models import User

# Marked for translation; shown with gettext() where patients read it.
TOO_MANY_ATTEMPTS = gettext_noop("Too many attempts. Please wait a few minutes and try again.")


def attempt_allowed(
    request: HttpRequest, *, action: str, key: str | None = None, user: User | None = None
) -> bool:
    """Count one attempt of ``action``; False once any of its rates is exceeded."""
    usage = ratelimit.consume(
        request, app="allauth.account", action=action, key=key, user=user, limit_get=True
    )
    return usage is not None
