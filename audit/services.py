"""Recording access to patient data (append-only)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from audit.models import AuditEvent


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is the proxy in production; the deploy/ proxy sets X-Forwarded-For and is the
    # only thing that can reach the app, so its first hop is the client.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return (forwarded.split(",")[0].strip() if forwarded else request.META.get("REMOTE_ADDR")) or None


def audit_record(
    *,
    request: HttpRequest,
    action: str,
    case: Any = None,  # an intake.Case (this layer never imports intake)
    object_ref: str = "",
    allowed: bool = True,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    user = request.user if request.user.is_authenticated else None
    return AuditEvent.objects.create(
        actor=user,
        actor_email=getattr(user, "email", "") if user else "",
        action=action,
        case=case,
        object_ref=object_ref,
        ip_address=_client_ip(request),
        allowed=allowed,
        detail=detail or {},
    )
