"""The cases images belong to, as the imaging layer sees them.

A case is intake's (``intake.Case``) and who may open it is decided above this layer (review's
``cases_visible_to``: staff by role and assignment, patients their own). Imaging sits below both
and imports neither (import-linter holds it to that). It reaches the case model through its own
foreign keys, and asks the layer above which cases a user may see through one function that the
review app registers when Django starts (``ReviewConfig.ready``). Until one is registered nothing
is visible: a missing registration fails closed, never open.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from imaging.models import Study

# A case: an ``intake.Case`` row. Typed loosely here because this layer never imports intake.
CaseRow = Any
CasesVisibleTo = Callable[[User | AnonymousUser], "QuerySet[Any]"]
CasesForIntegrations = Callable[[], "QuerySet[Any]"]

_cases_visible_to: CasesVisibleTo | None = None
_cases_for_integrations: CasesForIntegrations | None = None


def case_model() -> type[models.Model]:
    """The model of a case (the target of ``Study.case``)."""
    model = Study._meta.get_field("case").related_model
    assert isinstance(model, type) and issubclass(model, models.Model)
    return model


def case_visibility_register(
    cases_visible_to: CasesVisibleTo, *, cases_for_integrations: CasesForIntegrations
) -> None:
    """Called once at start-up by the app that decides who may see which case: for a person,
    and for a machine client of the institution (an integration credential)."""
    global _cases_visible_to, _cases_for_integrations
    _cases_visible_to = cases_visible_to
    _cases_for_integrations = cases_for_integrations


def cases_for_integrations() -> QuerySet[Any]:
    """The cases an institution's integration credentials reach (none when nobody registered)."""
    if _cases_for_integrations is None:
        return case_model()._default_manager.none()
    return _cases_for_integrations()


def cases_visible_to(user: User | AnonymousUser) -> QuerySet[Any]:
    """The cases ``user`` may see in the current schema (none when nobody registered a rule)."""
    if _cases_visible_to is None or not user.is_authenticated:
        return case_model()._default_manager.none()
    return _cases_visible_to(user)


def access_case(user: User | AnonymousUser, public_id: str | uuid.UUID) -> CaseRow:
    """The case with ``public_id`` if ``user`` may see it; 404 otherwise, so an outsider cannot
    tell a case exists."""
    try:
        return cases_visible_to(user).get(public_id=public_id)
    except (case_model().DoesNotExist, ValueError, TypeError):  # type: ignore[attr-defined]
        raise Http404("No such case.") from None


def case_known(public_id: str | uuid.UUID) -> CaseRow | None:
    """The case with ``public_id`` whoever may see it: only to put a refusal on its audit trail."""
    try:
        return case_model()._default_manager.filter(public_id=public_id).first()
    except (ValueError, TypeError):
        return None
