"""Recording access to patient data (append-only)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent


def _client_ip(request: HttpRequest) -> str | None:
    # config.proxy.ClientAddressMiddleware has put the client's address (behind trusted proxies
    # only) in REMOTE_ADDR; X-Forwarded-For itself is whatever the client chose to send.
    return request.META.get("REMOTE_ADDR") or None


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
    return audit_append(
        actor=user,
        actor_email=getattr(user, "email", "") if user else "",
        action=action,
        case=case,
        object_ref=object_ref,
        ip_address=_client_ip(request),
        allowed=allowed,
        detail=detail or {},
    )


def roles_changed_record(*, user: Any, by: Any, roles: list[str], reason: str, **_: Any) -> AuditEvent:
    """Every change of a staff member's roles, whoever made it (``accounts.signals.roles_changed``)."""
    return audit_append(
        actor=by,
        actor_email=getattr(by, "email", "") if by else "",
        action="roles.change",
        object_ref=f"user:{user.pk}",
        detail={"roles": roles, "reason": reason},
    )


# --- The hash chain ------------------------------------------------------------------------


def event_digest(event: AuditEvent, previous: str) -> str:
    """sha256 of the previous row's hash and every field of ``event`` (canonical JSON)."""
    content = {
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor_id,
        "actor_email": event.actor_email,
        "action": event.action,
        "case": event.case_id,
        "object_ref": event.object_ref,
        "ip": event.ip_address,
        "allowed": event.allowed,
        "detail": event.detail,
    }
    payload = previous + json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def audit_append(**fields: Any) -> AuditEvent:
    """Write one audit event, chained to the one before (in the current schema)."""
    with transaction.atomic():
        # One query once the head exists: read and locked together (created, and locked, once).
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        seq = head.seq + 1
        event = AuditEvent(at=timezone.now(), seq=seq, **fields)
        event.detail = json.loads(json.dumps(event.detail or {}, default=str))  # as stored
        event.row_hash = event_digest(event, head.row_hash)
        event.save(force_insert=True)
        head.seq, head.row_hash = seq, event.row_hash
        head.save(update_fields=["seq", "row_hash"])
    return event


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None  # the first seq whose hash does not match, or None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def audit_chain_verify() -> ChainReport:
    """Recompute the chain of the current schema: every row in order, and the head."""
    previous = ""
    expected_seq = 1
    checked = 0
    for event in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").iterator():
        if event.seq != expected_seq or event_digest(event, previous) != event.row_hash:
            return ChainReport(checked, event.seq)
        previous, expected_seq, checked = event.row_hash, expected_seq + 1, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and (head.seq != checked or head.row_hash != previous):
        return ChainReport(checked, checked + 1)  # the newest rows are gone
    return ChainReport(checked, None)
