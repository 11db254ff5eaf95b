"""Sign-in, sign-out, failed sign-ins, second-factor changes and role changes go to the audit
log of the institution they happen in (the audit table is per institution schema; the
platform's operators are not recorded there)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.http import HttpRequest

from audit.services import audit_append


def _in_institution() -> bool:
    return getattr(connection, "schema_name", "public") != "public"


def _record(request: HttpRequest | None, action: str, user: Any = None, **fields: Any) -> None:
    if not _in_institution():
        return
    audit_append(
        actor=user,
        actor_email=str(getattr(user, "email", "") or fields.pop("email", "")),
        action=action,
        ip_address=(request.META.get("REMOTE_ADDR") or None) if request is not None else None,
        allowed=fields.pop("allowed", True),
        object_ref=f"user:{user.pk}" if user is not None else "",
        detail=fields,
    )


def on_logged_in(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    _record(request, "auth.sign_in", user)


def on_logged_out(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    _record(request, "auth.sign_out", user)


def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    # The attempted address only (never the password: Django already masks it).
    attempted = str(credentials.get("email") or credentials.get("username") or "")[:254]
    _record(request, "auth.sign_in_failed", None, email=attempted, allowed=False)


def on_mfa_failed(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    _record(request, "auth.mfa_failed", user, allowed=False)


def _mfa_change(action: str) -> Any:
    def receiver(sender: Any, request: HttpRequest, user: Any, authenticator: Any, **_: Any) -> None:
        _record(request, action, user, kind=str(authenticator.type))

    return receiver


def audit_receivers_connect() -> None:
    from allauth.mfa import signals as mfa_signals
    from django.contrib.auth import signals as auth_signals

    from accounts.signals import roles_changed
    from audit.services import roles_changed_record

    roles_changed.connect(roles_changed_record, dispatch_uid="audit.roles_changed_record")
    auth_signals.user_logged_in.connect(on_logged_in, dispatch_uid="audit.sign_in")
    auth_signals.user_logged_out.connect(on_logged_out, dispatch_uid="audit.sign_out")
    auth_signals.user_login_failed.connect(on_login_failed, dispatch_uid="audit.sign_in_failed")
    mfa_signals.authentication_failed.connect(on_mfa_failed, dispatch_uid="audit.mfa_failed")
    for signal, action in (
        (mfa_signals.authenticator_added, "auth.mfa_added"),
        (mfa_signals.authenticator_removed, "auth.mfa_removed"),
        (mfa_signals.authenticator_reset, "auth.mfa_reset"),
    ):
        signal.connect(_mfa_change(action), dispatch_uid=f"audit.{action}", weak=False)


def sso_refused_record(request: HttpRequest, *, reason: str, email: str = "", detail: str = "") -> None:
    """A single sign-on attempt that was refused (its reason; the page says less)."""
    fields: dict[str, Any] = {"reason": reason, "allowed": False}
    if detail:
        fields["error"] = detail
    _record(request, "auth.sso_refused", None, email=email[:254], **fields)
