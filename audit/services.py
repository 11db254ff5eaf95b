"""Recording access to patient data (append-only)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
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
    payload = previous + json.dumps(_event_content(event), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _event_content(event: AuditEvent) -> dict[str, Any]:
    return {
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


def audit_append(**fields: Any) -> AuditEvent:
    """Write one audit event, chained to the one before (in the current schema).

    One statement, one round trip to the database (every audited page pays it): the chain
    head's row is moved on (``seq + 1``, and the new row's hash computed by PostgreSQL from the
    head's previous hash) and the event inserted with the head's new values. The update holds
    the head's row lock until the statement's transaction ends, so concurrent writers queue on
    it, and each re-reads the head another one moved (READ COMMITTED re-evaluates the update on
    the newest row): the chain stays a chain. The hash is the one ``event_digest`` computes:
    sha256(previous hash + the event's canonical JSON), whose last key is ``seq``, so PostgreSQL
    only appends the number and the closing brace to the JSON written here."""
    event = AuditEvent(at=timezone.now(), seq=0, **fields)
    event.detail = json.loads(json.dumps(event.detail or {}, default=str))  # as stored
    content = _event_json(event)
    assert content.endswith(_SEQ_TAIL), "seq must be the last key of the canonical JSON"
    row = _append_statement(event, content[: -len(_SEQ_TAIL)] + '"seq":')
    if row is None:  # the schema's first event: no head yet
        with transaction.atomic():
            AuditChainHead.objects.get_or_create(pk=1)
        row = _append_statement(event, content[: -len(_SEQ_TAIL)] + '"seq":')
    assert row is not None
    event.pk, event.seq, event.row_hash = row
    event._state.adding = False
    return event


_SEQ_TAIL = '"seq":0}'


def _event_json(event: AuditEvent) -> str:
    return json.dumps(_event_content(event), sort_keys=True, separators=(",", ":"), default=str)


def _append_statement(event: AuditEvent, json_head: str) -> tuple[int, int, str] | None:
    meta = AuditEvent._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.pk and f.name not in ("seq", "row_hash")]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    values = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in fields)
    params = [f.get_db_prep_save(f.pre_save(event, True), connection) for f in fields]
    sql = (
        f"WITH head AS (UPDATE {quote(AuditChainHead._meta.db_table)} "  # noqa: S608 (models' tables and columns)
        'SET "seq" = "seq" + 1, "row_hash" = encode(sha256(convert_to('
        "\"row_hash\" || %s || (\"seq\" + 1)::text || '}', 'UTF8')), 'hex') "
        'WHERE "id" = 1 RETURNING "seq", "row_hash") '
        f'INSERT INTO {quote(meta.db_table)} ({columns}, "seq", "row_hash") '
        f'SELECT {values}, head."seq", head."row_hash" FROM head '
        'RETURNING "id", "seq", "row_hash"'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json_head, *params])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1]), str(row[2])) if row else None


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
