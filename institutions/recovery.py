"""Onboardings whose go-live never finished: resumed, or rolled back; schemas nobody owns dropped.

A go-live runs in a worker (institutions.provisioning). If that worker dies mid-way (killed, out
of memory, its machine gone) or its task was never delivered (the broker was away when it was
queued), the onboarding stays QUEUED or PROVISIONING forever, with perhaps a half-made schema,
and the applicant's "try again" did nothing. This sweep (periodic, on the housekeeping queue)
finds them by their age (every step of a go-live touches ``updated``; its task's hard time
limit is far shorter than :data:`GO_LIVE_STALE_AFTER`):

- fewer than :data:`GO_LIVE_ATTEMPTS` runs so far: queued again. Provisioning is idempotent
  from the start: a new run drops whatever schema the dead one left and makes it afresh;
- otherwise rolled back: the schema dropped, the onboarding FAILED with the usual message, so
  the applicant may try again (and an operator sees it failed).

It also drops orphan schemas: the schema of a draft institution whose go-live is not under
way (a run that died after cloning, already rolled back), and a go-live schema
(``inst_<12 hex>``) with no institution at all (its draft deleted before schemas were dropped
with it).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from institutions.provisioning import GO_LIVE_FAILED, GO_LIVE_INTERNAL, schema_drop
from tenants.models import Domain, Institution, Onboarding
from tenants.schema import activate_public

logger = logging.getLogger(__name__)

# Longer than the go-live task's hard time limit (330 s) plus a wait in the queue.
GO_LIVE_STALE_AFTER = timedelta(minutes=10)
GO_LIVE_ATTEMPTS = 3
# The schema names go-live gives drafts (institutions.onboarding._draft_schema_name).
_DRAFT_SCHEMA = re.compile(r"^inst_[0-9a-f]{12}\Z")
_UNDER_WAY = (Onboarding.State.QUEUED, Onboarding.State.PROVISIONING)


@dataclass
class Recovered:
    resumed: list[int] = field(default_factory=list)
    rolled_back: list[int] = field(default_factory=list)
    schemas_dropped: list[str] = field(default_factory=list)


def onboarding_stale(*, onboarding: Onboarding, now: datetime | None = None) -> bool:
    """Whether ``onboarding``'s go-live is under way but nobody is working on it any more."""
    cutoff = (now or timezone.now()) - GO_LIVE_STALE_AFTER
    return onboarding.state in _UNDER_WAY and onboarding.updated < cutoff


def onboardings_recover(*, now: datetime | None = None) -> Recovered:
    """Resume or roll back every stale go-live, then drop orphan schemas (idempotent; safe to
    run beside go-lives in progress, which it never touches). Precondition: public schema."""
    from institutions.tasks import institution_go_live

    activate_public()
    now = now or timezone.now()
    cutoff = now - GO_LIVE_STALE_AFTER
    done = Recovered()
    stale = Onboarding.objects.filter(state__in=_UNDER_WAY, updated__lt=cutoff).select_related("institution")
    for onboarding in stale:
        if onboarding.go_live_attempts < GO_LIVE_ATTEMPTS:
            # Claimed with a conditional UPDATE: two sweeps (or a sweep and the applicant's
            # retry) queue it once. The run drops the dead run's schema itself.
            if Onboarding.objects.filter(
                pk=onboarding.pk, state=onboarding.state, updated=onboarding.updated
            ).update(state=Onboarding.State.QUEUED, progress=2, updated=timezone.now()):
                transaction.on_commit(functools.partial(institution_go_live.delay, onboarding.pk))
                done.resumed.append(onboarding.pk)
        elif onboarding_roll_back(onboarding=onboarding):
            done.rolled_back.append(onboarding.pk)
    done.schemas_dropped = orphan_schemas_drop()
    if done.resumed or done.rolled_back or done.schemas_dropped:
        logger.warning(
            "stale go-lives recovered: %d resumed, %d rolled back, %d schema(s) dropped",
            len(done.resumed),
            len(done.rolled_back),
            len(done.schemas_dropped),
        )
    return done


def onboarding_roll_back(*, onboarding: Onboarding) -> bool:
    """Undo what dead go-live runs made (schema, Domain rows) and end the onboarding FAILED;
    the applicant may try again. False if someone else took it meanwhile."""
    if not Onboarding.objects.filter(
        pk=onboarding.pk, state=onboarding.state, updated=onboarding.updated
    ).update(
        state=Onboarding.State.FAILED,
        progress=0,
        progress_message=GO_LIVE_FAILED.format(reason=GO_LIVE_INTERNAL),
        go_live_attempts=0,
        updated=timezone.now(),
    ):
        return False
    institution = onboarding.institution
    if institution is not None and institution.status == Institution.Status.DRAFT:
        Domain.objects.filter(tenant=institution).delete()
        schema_drop(schema_name=institution.schema_name)
    return True


def orphan_schemas_drop() -> list[str]:
    """Drop schemas made by go-lives that nobody will finish: a draft's whose go-live is not
    under way, and a go-live schema whose institution is gone. Never a live institution's."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", ["inst\\_%"])
        candidates = [row[0] for row in cursor.fetchall() if _DRAFT_SCHEMA.match(row[0])]
    if not candidates:
        return []
    owners = dict(Institution.objects.filter(schema_name__in=candidates).values_list("schema_name", "status"))
    under_way = set(
        Onboarding.objects.filter(
            Q(state__in=_UNDER_WAY) | Q(state=Onboarding.State.LIVE),
            institution__schema_name__in=candidates,
        ).values_list("institution__schema_name", flat=True)
    )
    dropped = []
    for schema in candidates:
        owned_by = owners.get(schema)
        if owned_by is None or (owned_by == Institution.Status.DRAFT and schema not in under_way):
            # Checked again just before: a go-live claimed since the reads above keeps its schema.
            if Onboarding.objects.filter(
                Q(state__in=_UNDER_WAY) | Q(state=Onboarding.State.LIVE), institution__schema_name=schema
            ).exists():
                continue
            schema_drop(schema_name=schema)
            dropped.append(schema)
    return dropped
