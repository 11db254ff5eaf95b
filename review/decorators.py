"""View wrappers that fetch-and-authorise a case and audit every attempt, allowed or not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase

from accounts.models import User
from audit.services import audit_record
from intake.models import Case
from review.access import access_case_as, is_coordinator

CaseView = Callable[..., HttpResponseBase]


def _case_in_schema(public_id: uuid.UUID) -> Case | None:
    # Only to name the case in a refusal's audit row; a case of another institution is not in
    # this schema and stays unnamed.
    return Case.objects.filter(public_id=public_id).only("pk").first()


def case_endpoint(
    *, action: str, role: str = "staff", audit_success: bool = True, related: tuple[str, ...] = ()
) -> Callable[[CaseView], CaseView]:
    """Wrap a view taking ``(request, case, ...)``: sign-in required, the case fetched through
    ``access_case_as(role=...)``, refusals (signed out, not visible, wrong role) audited with
    ``allowed=False`` and answered 302-to-sign-in / 404 / 403, and success audited as ``action``
    unless the view records its own, more detailed event. ``related``: see ``access_case``."""

    def decorator(view: CaseView) -> CaseView:
        @wraps(view)
        def wrapper(
            request: HttpRequest, public_id: uuid.UUID, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            if not request.user.is_authenticated:
                audit_record(
                    request=request,
                    action=action,
                    case=_case_in_schema(public_id),
                    object_ref=str(public_id),
                    allowed=False,
                    detail={"reason": "signed_out"},
                )
                return redirect_to_login(request.path)
            try:
                case = access_case_as(request.user, public_id, role=role, related=related)
            except (Http404, PermissionDenied) as refusal:
                audit_record(
                    request=request,
                    action=action,
                    case=_case_in_schema(public_id),
                    object_ref=str(public_id),
                    allowed=False,
                    detail={
                        "reason": "not_found" if isinstance(refusal, Http404) else "forbidden",
                        "role": role,
                    },
                )
                raise
            if audit_success:
                audit_record(request=request, action=action, case=case, object_ref=str(public_id))
            return view(request, case, *args, **kwargs)

        return wrapper

    return decorator


def staff_page(
    *, action: str, need: Callable[[User], bool] | None = None
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Wrap a workspace page that is not about one case (queue, roster, dashboard, audit log):
    staff only (``need`` narrows it further); refusals are audited."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.path)
            user = request.user
            assert isinstance(user, User)
            if not user.is_institution_staff or (need is not None and not need(user)):
                audit_record(request=request, action=action, allowed=False, detail={"reason": "forbidden"})
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def admin_only(user: User) -> bool:
    return user.is_institution_admin


def coordinator_only(user: User) -> bool:
    return is_coordinator(user)


def json_or_redirect(request: HttpRequest) -> bool:
    """Whether the caller is our fetch() code (wants JSON) rather than a plain form post."""
    return request.headers.get("Accept", "").startswith("application/json")
