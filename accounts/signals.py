"""Signals the accounts layer sends for higher layers to act on (it must not import them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after an account's staff roles changed (invitation accepted, roster edit, take-over).
# Arguments: user (the account), by (who did it, or None), roles (names after the change),
# reason (a short reference such as "invitation:12" or "roster", never free text).
roles_changed = Signal()
