"""Creating institutions (with their brand and settings) and changing their status as an
operator (public schema)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_exists

from branding.models import Brand
from institutions.institution_settings import review_settings_sync
from institutions.provisioning import schema_clone
from tenants.database_roles import schema_app_grant
from tenants.models import Domain, Institution, InstitutionSettings, OperatorAction
from tenants.services import platform_host

REASON_REQUIRED = "Please give a reason: it is recorded with the action."
ACTION_NOT_ALLOWED = "This action does not apply to an institution in its current status."


class OperatorActionRefused(ValueError):
    pass


def institution_create(
    *,
    name: str,
    slug: str,
    status: str = Institution.Status.ACTIVE,
    primary_colour: str = "#1f4e79",
    accent_colour: str = "#a84d0b",
) -> Institution:
    """Create an institution, its schema (cloned from the migrated template, as go-live does:
    a second, where migrating a new schema takes a quarter of a minute), its platform subdomain
    and its brand.

    Used by the demo seed and operators; self-service institutions go through the onboarding
    wizard (institutions.onboarding). If anything fails after the schema was made, it is
    dropped again so no orphan is left behind.
    """
    institution = Institution(schema_name=slug.replace("-", "_"), name=name, slug=slug, status=status)
    institution.save()
    try:
        if not schema_exists(institution.schema_name):
            schema_clone(schema_name=institution.schema_name)
        # Made by the owner (operators and the seed run as the owner): the app's role its rights.
        schema_app_grant(schema_name=institution.schema_name)
        with transaction.atomic():
            Domain.objects.create(domain=platform_host(slug=slug), tenant=institution, is_primary=True)
            Brand.objects.create(
                institution=institution, primary_colour=primary_colour, accent_colour=accent_colour
            )
            InstitutionSettings.objects.create(institution=institution)
            institution.went_live = timezone.now()
            institution.save(update_fields=["went_live"])
        # The review rules' row, as go-live writes it (institutions.provisioning): reads never do.
        review_settings_sync(institution=institution)
    except Exception:
        institution.auto_drop_schema = True
        institution.delete(force_drop=True)
        raise
    return institution


def institution_set_status(*, institution: Institution, status: str) -> Institution:
    institution.status = status
    institution.status_changed = timezone.now()
    institution.save(update_fields=["status", "status_changed"])
    return institution


# What each operator action does, and from which statuses it may be taken.
OPERATOR_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    OperatorAction.Action.APPROVE: ((Institution.Status.PENDING,), Institution.Status.ACTIVE),
    OperatorAction.Action.SUSPEND: (
        (Institution.Status.PENDING, Institution.Status.ACTIVE),
        Institution.Status.SUSPENDED,
    ),
    OperatorAction.Action.REACTIVATE: ((Institution.Status.SUSPENDED,), Institution.Status.ACTIVE),
}


def institution_operator_action(
    *, institution_id: int, operator_email: str, action: str, reason: str
) -> OperatorAction:
    """Change an institution's status as an operator, recording who, what and why.

    The row is locked so two operators acting at once cannot both apply a transition from
    the same status.
    """
    reason = reason.strip()
    if not reason:
        raise OperatorActionRefused(REASON_REQUIRED)
    if action not in OPERATOR_ACTIONS:
        raise OperatorActionRefused(ACTION_NOT_ALLOWED)
    allowed_from, to_status = OPERATOR_ACTIONS[action]
    with transaction.atomic():
        institution = (
            Institution.objects.select_for_update().exclude(schema_name="public").get(pk=institution_id)
        )
        if institution.status not in allowed_from:
            raise OperatorActionRefused(ACTION_NOT_ALLOWED)
        from_status = institution.status
        institution_set_status(institution=institution, status=to_status)
        return OperatorAction.objects.create(
            institution=institution,
            institution_slug=institution.slug,
            operator_email=operator_email,
            action=action,
            reason=reason,
            from_status=from_status,
            to_status=to_status,
        )
