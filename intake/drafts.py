"""Drafts: how many a patient may keep open, and what happens to those they abandon.

Storage is bounded per patient, not per draft (a new draft is not a new allowance): at most
``MAX_OPEN_DRAFTS`` unsent requests at once, and uploads count against one quota across all of
a patient's cases (see ``intake.tus.services``). A draft untouched for ``DRAFT_RETENTION`` is
deleted with its files; ``DRAFT_WARNING`` before that the patient is emailed once, with a link
to finish it. A draft the patient touches again starts its time over.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop, ngettext_lazy

from accounts.models import User
from branding.emails import branded_email_send
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.schema import current_institution
from tenants.selectors import institution_primary_url

logger = logging.getLogger(__name__)

MAX_OPEN_DRAFTS = 3
DRAFT_RETENTION = timedelta(days=60)
DRAFT_WARNING = timedelta(days=7)

TOO_MANY_DRAFTS = gettext_noop(
    "You already have {count} requests you have not sent yet. Please finish or delete one of "
    "them before starting another."
)

# Sent just before a draft is deleted, with ``case``: apps that keep rows about a draft (the
# fee frozen for it) remove them, or raise to keep the draft.
draft_deleting = Signal()


def drafts_open_count(*, owner: User) -> int:
    return Case.objects.filter(owner=owner, status=Case.Status.DRAFT).count()


def case_storage_prefixes(*, case: Case) -> list[str]:
    """Every storage folder holding files of ``case`` (the patient's uploads and what ingest
    made of them)."""
    folders = [f"{kind}/{case.public_id}/" for kind in ("uploads", "dicom", "reports", "previews")]
    staging = [f"tus-staging/{upload_id}/" for upload_id in case.uploads.values_list("public_id", flat=True)]
    return folders + staging


def draft_delete(*, case: Case) -> bool:
    """Delete a draft and its files; False if it is no longer a draft (sent meanwhile).

    Files go after the rows are gone, so a failure half-way leaves files without rows (found
    by the prefix again next time), never rows pointing at missing files.
    """
    prefixes = case_storage_prefixes(case=case)
    with transaction.atomic():
        locked = Case.objects.select_for_update().filter(pk=case.pk, status=Case.Status.DRAFT).first()
        if locked is None:
            return False
        draft_deleting.send(sender=Case, case=locked)
        locked.delete()
    storage = tenant_storage()
    for prefix in prefixes:
        storage.delete_prefix(prefix)
    return True


def _abandoned(*, before: datetime) -> list[Case]:
    """Drafts whose row and uploads were all last touched before ``before``."""
    drafts = (
        Case.objects.filter(status=Case.Status.DRAFT, updated__lt=before)
        .annotate(last_upload=Max("uploads__created"))
        .filter(Q(last_upload__isnull=True) | Q(last_upload__lt=before))
        .select_related("owner")
    )
    return list(drafts[:500])


def _warning_send(*, case: Case, dedupe_key: str) -> None:
    institution = current_institution()
    link = institution_primary_url(institution=institution).rstrip("/") + reverse(
        "intake:case_status", args=[case.public_id], urlconf=settings.ROOT_URLCONF
    )
    branded_email_send(
        institution=institution,
        to=[case.owner.email],
        subject=ngettext_lazy(
            "Your unsent request will be deleted in %(days)s day",
            "Your unsent request will be deleted in %(days)s days",
            "days",
        )
        % {"days": DRAFT_WARNING.days},
        template="intake/email/draft_purge_warning",
        context={"case": case, "link": link, "days": DRAFT_WARNING.days},
        dedupe_key=dedupe_key,
        language=case.owner.language,
    )


def drafts_abandoned_purge() -> tuple[int, int]:
    """Warn the owners of drafts about to expire, delete those warned and expired (in the
    current institution's schema). Returns (warned, deleted). Safe to run twice."""
    now = timezone.now()
    deleted = 0
    for case in _abandoned(before=now - DRAFT_RETENTION):
        if case.purge_warned_at is None or case.purge_warned_at > now - DRAFT_WARNING:
            continue  # never warned (or warned too recently): the warning comes first
        try:
            if draft_delete(case=case):
                deleted += 1
        except ValidationError:  # money moved for it (payments refused): kept, for staff to see
            logger.warning("abandoned draft kept", extra={"case": case.pk})
    warned = 0
    for case in _abandoned(before=now - (DRAFT_RETENTION - DRAFT_WARNING)):
        if case.purge_warned_at is not None:
            continue
        # The claim and the email (an outbox message) commit together: a second run at the
        # same moment finds the draft claimed, and a failure leaves it for the next run.
        with transaction.atomic():
            claimed = Case.objects.filter(
                pk=case.pk, status=Case.Status.DRAFT, purge_warned_at__isnull=True
            ).update(purge_warned_at=now)
            if not claimed:
                continue
            _warning_send(case=case, dedupe_key=f"draft-purge-warning:{case.pk}:{now.isoformat()}")
        warned += 1
    return warned, deleted


def draft_touched(*, case: Case) -> None:
    """The patient came back to a draft they were warned about: its time starts over."""
    if case.purge_warned_at is not None:
        Case.objects.filter(pk=case.pk).update(purge_warned_at=None, updated=timezone.now())
