"""The patient's choices about the files they sent: which studies to send (and removing those
that are not the patient's), and what each report is. Forms that work without JavaScript; the
upload steps also poll :func:`case_files_status` for the same lists, rendered by the server.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.http import SignedInRequest
from audit.services import audit_record
from imaging.download import case_originals_zip
from imaging.models import Report, Study
from intake.access import access_patient_case, access_patient_case_for_edit
from intake.models import Case
from intake.overview import case_upload_overview
from intake.services import case_report_kinds_set, case_studies_select, case_study_remove

BACK_STEPS = {
    "images": "intake:case_images",
    "summary": "intake:case_summary",
    "reports": "intake:case_reports",
}


def files_context(case: Case, overview: dict[str, Any], *, back_step: str = "images") -> dict[str, Any]:
    """What the file partials (received, studies, reports) need."""
    return {
        "case": case,
        "overview": overview,
        "back_step": back_step,
        "report_kinds": Report.Kind.choices,
    }


@login_required
@require_GET
def case_files_status(request: HttpRequest, public_id: uuid.UUID) -> JsonResponse:
    """What the server made of the uploaded files so far (polled by the upload steps), with the
    lists rendered by the same templates as the page (so their words are translated)."""
    case = access_patient_case(request.user, public_id)
    overview = case_upload_overview(case=case)
    context = files_context(case, overview, back_step=request.GET.get("step", "images"))
    payload = {
        **overview,
        "html": {
            "received": render_to_string("intake/wizard/_received.html", context, request=request),
            "studies": render_to_string("intake/wizard/_studies.html", context, request=request),
            "reports": render_to_string("intake/wizard/_reports_received.html", context, request=request),
        },
    }
    response = JsonResponse(payload)
    response["Cache-Control"] = "no-store"
    return response


def _back(request: HttpRequest, case: Case) -> HttpResponse:
    step = request.POST.get("back", "images")
    return redirect(reverse(BACK_STEPS.get(step, BACK_STEPS["images"]), args=[case.public_id]))


def _study_ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdigit()]


@login_required
@require_POST
def case_studies(request: SignedInRequest, public_id: uuid.UUID) -> HttpResponse:
    """Save which studies to send, or remove one that is not the patient's."""
    case = access_patient_case_for_edit(request.user, public_id)
    remove = _study_ids([request.POST.get("remove", "")])
    if remove:
        study = case_study_remove(case=case, study_id=remove[0], by=request.user)
        if study is not None:
            audit_record(
                request=request,
                action="study.exclude",
                case=case,
                object_ref=f"study:{study.pk}",
                detail={"reason": Study.Exclusion.PATIENT_NOT_THEIRS, "identity": study.identity_status},
            )
            messages.success(
                request,
                _("Those images were removed from the request. They will not be sent to the physicians."),
            )
        return _back(request, case)
    before = set(Study.objects.included().filter(case=case).values_list("pk", flat=True))
    sent, left_out = case_studies_select(
        case=case,
        send_ids=_study_ids(request.POST.getlist("send")),
        by=request.user,
    )
    after = set(Study.objects.included().filter(case=case).values_list("pk", flat=True))
    if before != after:
        audit_record(
            request=request,
            action="study.choose",
            case=case,
            detail={"left_out": sorted(before - after), "put_back": sorted(after - before)},
        )
    messages.success(
        request,
        _("Saved: %(sent)s to send, %(left_out)s left out.") % {"sent": sent, "left_out": left_out},
    )
    return _back(request, case)


@login_required
@require_POST
def case_report_kinds(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Save what each report is (asked when a report was found on a disc, changeable later)."""
    case = access_patient_case_for_edit(request.user, public_id)
    kinds = {
        key.removeprefix("kind-"): str(request.POST.get(key, ""))
        for key in request.POST
        if key.startswith("kind-")
    }
    case_report_kinds_set(case=case, kinds=kinds)
    messages.success(request, _("The report types are saved."))
    return _back(request, case)


@login_required
@require_GET
def case_images_download(request: HttpRequest, public_id: uuid.UUID) -> StreamingHttpResponse:
    """The patient's own original image files as one zip, streamed (audited)."""
    case = access_patient_case(request.user, public_id)
    audit_record(request=request, action="images.download", case=case, object_ref=str(case.public_id))
    response = StreamingHttpResponse(case_originals_zip(case=case), content_type="application/zip")
    name = f"images-{case.number}.zip" if case.number else "images.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
