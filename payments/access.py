"""Fetching payment-related objects *and* checking the user may reach them, in one step.

Everything is looked up in the current institution's schema, so another institution's cases,
codes and payments never match (404).
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from accounts.models import User
from intake.models import Case
from payments.models import WaiverCode


def access_case_to_pay(user: User | AnonymousUser, public_id: str | uuid.UUID) -> Case:
    """The case with ``public_id`` if ``user`` started it (the person who pays); 404 for
    anyone else, staff included, so an outsider cannot tell the case exists."""
    if not user.is_authenticated:
        raise PermissionDenied
    try:
        return Case.objects.select_related("owner").get(public_id=public_id, owner=user)
    except (Case.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such case.") from None


def access_payment_settings(user: User | AnonymousUser) -> User:
    """The institution's admin (price, Stripe connection, waiver codes); PermissionDenied else."""
    if not (user.is_authenticated and isinstance(user, User) and user.is_institution_admin):
        raise PermissionDenied
    return user


def access_payment_reports(user: User | AnonymousUser) -> User:
    """Admins and coordinators see payments and revenue; PermissionDenied for anyone else."""
    if not (
        user.is_authenticated
        and isinstance(user, User)
        and (user.is_institution_admin or user.is_coordinator)
    ):
        raise PermissionDenied
    return user


def access_waiver_code(user: User | AnonymousUser, code_id: int) -> WaiverCode:
    access_payment_settings(user)
    try:
        return WaiverCode.objects.get(pk=code_id)
    except WaiverCode.DoesNotExist:
        raise Http404("No such code.") from None
