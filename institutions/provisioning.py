"""Taking a draft institution live: its schema, its administrator, its address.

Speed: a new schema is copied (``sr_schema_copy``, tenants migration 0011: reads only the
template's own objects, so its time does not grow with the number of institutions) from a
template schema that is kept migrated, instead of running every migration again: about a
second, not a minute. The template holds no data but the migration records (and content
types/permissions).

Nothing half-made: if any step fails, what this run created (schema, Domain row) is removed
again, the institution stays a draft and the applicant sees a message and may retry. If the
run itself dies (its worker killed, the machine gone), the onboarding is left QUEUED or
PROVISIONING with a half-made schema: institutions.recovery resumes it (a new run drops what
the dead one made and starts afresh) or, after a few attempts, rolls it back.
"""

from __future__ import annotations

import logging

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from tenants.database_roles import (
    TEMPLATE_SCHEMA,
    schema_app_grant,
    schema_clone_from_template,
    schema_drop_unless_live,
)
from tenants.models import Domain, Institution, Onboarding
from tenants.schema import activate_public
from tenants.services import platform_host

logger = logging.getLogger(__name__)

_TEMPLATE_LOCK = 7_310_001  # pg_advisory_lock key: one process (re)builds the template at a time

GO_LIVE_FAILED = (
    "We could not set up your portal ({reason}). Nothing was left half-made: you can try again, "
    "or contact us if it keeps failing."
)
GO_LIVE_ADDRESS_TAKEN = "its web address was taken meanwhile; choose another on the Web address step"
GO_LIVE_INTERNAL = "an internal error"


class GoLiveFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def tenant_template_ensure() -> None:
    """Create the template schema if missing and bring it to the latest migrations.

    Cheap when it is current (the migration executor only compares records). Run at deploy /
    seed time so the first go-live does not pay for it.
    """
    activate_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_TEMPLATE_LOCK])
        if not schema_exists(TEMPLATE_SCHEMA):
            cursor.execute(f'CREATE SCHEMA "{TEMPLATE_SCHEMA}"')
    try:
        call_command(
            "migrate_schemas", tenant=True, schema_name=TEMPLATE_SCHEMA, interactive=False, verbosity=0
        )
    finally:
        # The migrate command may close the connection (which releases the lock by itself);
        # unlocking on a fresh connection is then a harmless no-op.
        activate_public()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_TEMPLATE_LOCK])
    schema_app_grant(schema_name=TEMPLATE_SCHEMA)


def tenant_template_current() -> bool:
    """Whether the template exists with every migration on disk applied (two small queries)."""
    from tenants.schema_migrations import applied_migrations, migrations_on_disk, schemas_existing

    if not schemas_existing([TEMPLATE_SCHEMA]):
        return False
    return migrations_on_disk() <= applied_migrations([TEMPLATE_SCHEMA], reconnect=False)[TEMPLATE_SCHEMA]


def schema_clone(*, schema_name: str) -> None:
    """Make ``schema_name`` a copy of the migrated template (migrations recorded, no data)."""
    # The deploy migrates the template (migrate_schemas, then tenant_template): going live only
    # checks it, so it neither pays for a migrate command nor takes a session-level lock (which
    # a transaction-mode pooler cannot keep) unless the template really is behind.
    if not tenant_template_current():
        tenant_template_ensure()
    # Through the owner's sr_schema_clone: the application's role may not create schemas
    # itself (it would own the new audit table, and so could rewrite it).
    schema_clone_from_template(template=TEMPLATE_SCHEMA, schema_name=schema_name)
    activate_public()


def schema_drop(*, schema_name: str) -> None:
    """Drop an institution's schema if it exists (a draft's, never a live one's: callers check)."""
    _schema_drop(schema_name=schema_name)


def _schema_drop(*, schema_name: str) -> None:
    # The owner's sr_schema_drop: never a live institution's schema (the database refuses).
    schema_drop_unless_live(schema_name=schema_name)


def _progress(onboarding_id: int, percent: int, message: str) -> None:
    # Outside any transaction: the applicant's page polls and must see each step at once.
    Onboarding.objects.filter(pk=onboarding_id).update(
        progress=percent, progress_message=message, updated=timezone.now()
    )


def _administrator_create(*, onboarding: Onboarding) -> None:
    """The applicant becomes the institution's first administrator, with the same password and
    an already-confirmed email. Precondition: the connection is on the institution's schema."""
    from accounts.models import User

    user = User(
        email=onboarding.email,
        full_name=onboarding.full_name,
        is_institution_admin=True,
        is_invited_staff=True,
        password=onboarding.password_hash,
    )
    user.save()
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)


def institution_go_live(*, onboarding_id: int) -> bool:
    """Provision the onboarding's institution. Idempotent: only a QUEUED onboarding is claimed
    (conditional UPDATE), so a task delivered twice does the work once. Returns whether it went live."""
    claimed = Onboarding.objects.filter(pk=onboarding_id, state=Onboarding.State.QUEUED).update(
        state=Onboarding.State.PROVISIONING,
        progress=5,
        progress_message="Starting…",
        go_live_attempts=F("go_live_attempts") + 1,
        updated=timezone.now(),
    )
    if not claimed:
        return False
    onboarding = Onboarding.objects.select_related("institution").get(pk=onboarding_id)
    institution = onboarding.institution
    assert institution is not None  # onboarding_go_live_request checked it
    host = platform_host(slug=institution.slug)
    schema_made = False
    try:
        _progress(onboarding_id, 10, f"Reserving {host}…")
        if Domain.objects.filter(domain=host).exists():
            raise GoLiveFailed(GO_LIVE_ADDRESS_TAKEN)
        # A schema already there can only be left from a run killed half-way (the name is
        # this draft's own, random and never reused): it holds nothing yet, start afresh.
        _schema_drop(schema_name=institution.schema_name)

        _progress(onboarding_id, 25, "Creating your institution's private database…")
        schema_clone(schema_name=institution.schema_name)
        schema_made = True

        _progress(onboarding_id, 60, "Creating your administrator account…")
        # Savepoints: a failing step must leave the connection usable for the clean-up below
        # (also when the caller holds a transaction).
        with schema_context(institution.schema_name), transaction.atomic():
            _administrator_create(onboarding=onboarding)
            from institutions.institution_settings import review_settings_sync

            review_settings_sync(institution=institution)

        _progress(onboarding_id, 80, f"Connecting {host}…")
        status = (
            Institution.Status.PENDING if settings.INSTITUTIONS_NEED_APPROVAL else Institution.Status.ACTIVE
        )
        now = timezone.now()
        try:
            with transaction.atomic():
                Domain.objects.create(domain=host, tenant=institution, is_primary=True)
                Institution.objects.filter(pk=institution.pk).update(
                    status=status, went_live=now, status_changed=now
                )
                Onboarding.objects.filter(pk=onboarding_id).update(
                    state=Onboarding.State.LIVE,
                    progress=90,
                    progress_message="Sending invitations to your team…",
                    updated=now,
                )
        except IntegrityError as exc:
            raise GoLiveFailed(GO_LIVE_ADDRESS_TAKEN) from exc
    except Exception as exc:
        reason = exc.reason if isinstance(exc, GoLiveFailed) else GO_LIVE_INTERNAL
        if not isinstance(exc, GoLiveFailed):
            logger.exception("go-live failed", extra={"onboarding": onboarding_id})
        activate_public()
        if schema_made:
            _schema_drop(schema_name=institution.schema_name)
        Domain.objects.filter(tenant=institution).delete()
        Onboarding.objects.filter(pk=onboarding_id).update(
            state=Onboarding.State.FAILED,
            progress=0,
            progress_message=GO_LIVE_FAILED.format(reason=reason),
            updated=timezone.now(),
        )
        return False

    # Live. What follows may fail without undoing that: an unsent invitation can be re-sent
    # from the team settings page.
    from institutions.invitations import institution_invitations_send_pending

    institution.refresh_from_db()
    institution_invitations_send_pending(institution=institution)
    _progress(onboarding_id, 100, "Your portal is live.")
    return True
