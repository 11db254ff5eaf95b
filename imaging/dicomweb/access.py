"""Who may read which study over DICOMweb, and the audit trail of every request.

Every study, series and instance is reached through ``cases_visible_to`` (imaging.cases, the
rule review registers), so a
user sees images of exactly the cases they may open, in this institution's schema only. A UID
that exists but belongs to a case the user may not see answers 404 like a UID that does not
exist (an outsider cannot probe for studies), and the refusal is audited against that case.

Scope: the same StudyInstanceUID may belong to two cases (two patients uploading copies of one
CD, or a patient uploading again for a new case). Under ``/dicomweb/cases/<case>/`` a UID names
that case's study and nothing else; this is what the viewer uses. Under the root ``/dicomweb/``
(for standard clients that know only UIDs) a UID is resolved among the cases the user may see,
the oldest case first, and searches list each UID once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.services import audit_record
from imaging.cases import CaseRow, case_known, cases_for_integrations, cases_visible_to
from imaging.integrations.credentials import CredentialRefused, bearer_token, credential_authenticate
from imaging.models import Instance, IntegrationCredential, Series, Study

SIGN_IN_REQUIRED = "Sign in to see images."
BAD_CREDENTIAL = "This API key is not valid (unknown, revoked, or without permission to read studies)."
NOT_FOUND = "No such study, series or instance."


class DicomwebRefused(Exception):
    """The request is refused; ``status`` and ``message`` (safe to show) form the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Scope:
    """The cases a request may reach: one case (case-scoped URL) or all the user may see."""

    cases: QuerySet[CaseRow]
    case: CaseRow | None


def request_credential(request: HttpRequest) -> IntegrationCredential | None:
    """The integration credential a request was authenticated with, if any."""
    credential = getattr(request, "sr_credential", None)
    return credential if isinstance(credential, IntegrationCredential) else None


def _detail(request: HttpRequest, detail: dict[str, object] | None = None) -> dict[str, object] | None:
    """The audit detail, naming the integration credential when a machine client asked."""
    credential = request_credential(request)
    if credential is None:
        return detail
    return {**(detail or {}), "credential": str(credential.public_id), "credential_name": credential.name}


def _refuse_not_found(request: HttpRequest, *, kind: str, case: CaseRow | None, ref: str) -> DicomwebRefused:
    if case is not None:
        audit_record(
            request=request,
            action=f"dicomweb.{kind}",
            case=case,
            object_ref=ref,
            allowed=False,
            detail=_detail(request),
        )
    return DicomwebRefused(404, NOT_FOUND)


def access_dicomweb_scope(request: HttpRequest, *, case_id: uuid.UUID | None, kind: str) -> Scope:
    """The cases this request may read from; refuses a logged-out visitor (401) and a case the
    user may not see (404, audited against that case).

    A machine client sends ``Authorization: Bearer <key>`` (an integration credential, see
    imaging/integrations): it reads the cases the institution's integrations may reach, and a
    bad key is refused (401) even if a browser session came along with it.
    """
    token = bearer_token(request)
    if token is not None:
        try:
            credential = credential_authenticate(token=token, scope=IntegrationCredential.Scope.DICOMWEB_READ)
        except CredentialRefused:
            audit_record(
                request=request,
                action=f"dicomweb.{kind}",
                object_ref="",
                allowed=False,
                detail={"reason": "bad_credential"},
            )
            raise DicomwebRefused(401, BAD_CREDENTIAL) from None
        request.sr_credential = credential  # type: ignore[attr-defined]
        return _scope_of(request, cases_for_integrations(), case_id=case_id, kind=kind)
    if not request.user.is_authenticated:
        if case_id is not None:
            # Looked up only to put the refusal on the case's audit trail; nothing is served.
            known = case_known(case_id)
            if known is not None:
                audit_record(
                    request=request, action=f"dicomweb.{kind}", case=known, object_ref="", allowed=False
                )
        raise DicomwebRefused(401, SIGN_IN_REQUIRED)
    return _scope_of(request, cases_visible_to(request.user), case_id=case_id, kind=kind)


def _scope_of(
    request: HttpRequest, visible: QuerySet[CaseRow], *, case_id: uuid.UUID | None, kind: str
) -> Scope:
    if case_id is None:
        return Scope(cases=visible, case=None)
    case = visible.filter(public_id=case_id).first()
    if case is None:
        known = case_known(case_id)  # for the audit trail only
        raise _refuse_not_found(request, kind=kind, case=known, ref="")
    return Scope(cases=visible.filter(pk=case.pk), case=case)


def studies_in_scope(scope: Scope) -> QuerySet[Study]:
    """Studies of the scope's cases, each StudyInstanceUID once (the oldest case's copy);
    studies left out of their case (by the patient or staff) are not served."""
    first_copies = (
        Study.objects.included()
        .filter(case__in=scope.cases)
        .order_by("study_instance_uid", "case_id")
        .distinct("study_instance_uid")
        .values("id")
    )
    return Study.objects.filter(id__in=first_copies)


def access_dicomweb_study(request: HttpRequest, *, scope: Scope, study_uid: str, kind: str) -> Study:
    study = studies_in_scope(scope).filter(study_instance_uid=study_uid).select_related("case").first()
    if study is None:
        # Which case holds this UID, if any, only to audit the refusal against it.
        other = Study.objects.filter(study_instance_uid=study_uid).select_related("case").first()
        raise _refuse_not_found(
            request, kind=kind, case=scope.case or (other.case if other else None), ref=study_uid
        )
    return study


def access_dicomweb_series(
    request: HttpRequest, *, scope: Scope, study_uid: str, series_uid: str, kind: str
) -> Series:
    study = access_dicomweb_study(request, scope=scope, study_uid=study_uid, kind=kind)
    series = study.series.filter(series_instance_uid=series_uid).first()
    if series is None:
        raise _refuse_not_found(request, kind=kind, case=study.case, ref=series_uid)
    series.study = study
    return series


def access_dicomweb_instance(
    request: HttpRequest, *, scope: Scope, study_uid: str, series_uid: str, instance_uid: str, kind: str
) -> Instance:
    # One query for the common case (the viewer reads a frame per image while scrolling); the
    # step-by-step lookups below run only to find the case a refusal is audited against.
    found = (
        Instance.objects.filter(
            sop_instance_uid=instance_uid,
            series__series_instance_uid=series_uid,
            series__study__study_instance_uid=study_uid,
            series__study__in=studies_in_scope(scope),
        )
        .select_related("series__study__case")
        .first()
    )
    if found is not None:
        return found
    series = access_dicomweb_series(
        request, scope=scope, study_uid=study_uid, series_uid=series_uid, kind=kind
    )
    instance = series.instances.filter(sop_instance_uid=instance_uid).first()
    if instance is None:
        raise _refuse_not_found(request, kind=kind, case=series.study.case, ref=instance_uid)
    instance.series = series
    return instance


# Frames are audited once per user, series and this many seconds: a reader scrolling a
# 300-image series asks for 300 frames (plus the prefetched ones), and 300 rows saying the same
# thing cost a write each and bury the rest of the case's audit log. The row names the series
# and the first frame read; every other kind of request, and every refusal, is one row each.
FRAMES_AUDIT_SECONDS = 600


def audit_dicomweb(
    request: HttpRequest, *, kind: str, scope: Scope, study: Study | None, ref: str, series_uid: str = ""
) -> None:
    """One audit event per request served, but frames once per series and window (above); the
    refused requests are recorded where refused."""
    case = study.case if study is not None else scope.case
    detail = None
    if kind == "frames" and series_uid:
        credential = request_credential(request)
        user_id = f"credential-{credential.pk}" if credential else getattr(request.user, "pk", None)
        # The cache key is per schema (django-tenants' key function), user and series.
        if not cache.add(f"dicomweb:frames-audited:{user_id}:{series_uid}", True, FRAMES_AUDIT_SECONDS):
            return
        detail = {"series": series_uid, "covers_seconds": FRAMES_AUDIT_SECONDS}
    audit_record(
        request=request,
        action=f"dicomweb.{kind}",
        case=case,
        object_ref=ref,
        allowed=True,
        detail=_detail(request, detail),
    )
