"""The institution admin's pages: the staff roster (roles, reviewer profiles) and the review
settings (turnaround, idle sign-out, follow-up questions)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from audit.services import audit_record
from review import services, staff_accounts
from review.decorators import admin_only, staff_page
from review.forms import ReviewSettingsForm, StaffMemberForm
from review.models import ReviewerProfile
from review.selectors import review_settings_get, roster_list, turnaround_business_days_get
from review.views.common import request_user


@require_GET
@staff_page(action="roster.view", need=admin_only)
def roster(request: HttpRequest) -> HttpResponse:
    settings_row = review_settings_get()
    rows = roster_list()
    forms = []
    for row in rows:
        profile = row.profile or ReviewerProfile(user=row.user)
        member_form = StaffMemberForm(
            prefix=f"u{row.user.pk}",
            initial={
                "is_institution_admin": row.user.is_institution_admin,
                "is_coordinator": row.user.is_coordinator,
                "is_reviewer": row.user.is_reviewer,
                "credentials": profile.credentials,
                "title": profile.title,
                "specialties": profile.specialties.replace(",", ", "),
                "modalities": profile.modalities.replace(",", ", "),
                "available": profile.available,
                "max_open_cases": profile.max_open_cases,
            },
        )
        # One <form> per row lives in a cell; the inputs in other cells join it by id.
        for field in member_form.fields.values():
            field.widget.attrs["form"] = f"member-{row.user.pk}"
        forms.append((row, member_form))
    settings_form = ReviewSettingsForm(
        initial={
            "turnaround_business_days": turnaround_business_days_get(),
            "soon_due_business_days": settings_row.soon_due_business_days,
            "session_idle_minutes": settings_row.session_idle_minutes,
            "reviewers_see_only_assigned": settings_row.reviewers_see_only_assigned,
            "follow_up_questions_allowed": settings_row.follow_up_questions_allowed,
            "peer_review_percent": settings_row.peer_review_percent,
        }
    )
    return render(request, "review/roster.html", {"rows": forms, "settings_form": settings_form})


@require_POST
@staff_page(action="roster.update", need=admin_only)
def roster_member(request: HttpRequest, user_id: int) -> HttpResponse:
    member = _roster_member(user_id)
    form = StaffMemberForm(request.POST, prefix=f"u{member.pk}")
    if not form.is_valid():
        messages.error(
            request,
            "Please correct the roster entry: "
            + "; ".join(
                f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
            ),
        )
        return redirect("review:roster")
    if member.pk == request_user(request).pk and not form.cleaned_data["is_institution_admin"]:
        messages.error(request, "You cannot remove your own administrator role.")
        return redirect("review:roster")
    services.staff_member_update(user=member, by=request_user(request), **form.cleaned_data)
    audit_record(request=request, action="roster.update", object_ref=f"user:{member.pk}")
    messages.success(request, f"Saved {member}.")
    return redirect("review:roster")


@require_POST
@staff_page(action="settings.update", need=admin_only)
def review_settings(request: HttpRequest) -> HttpResponse:
    form = ReviewSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Please correct the settings: "
            + "; ".join(
                f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
            ),
        )
        return redirect("review:roster")
    services.review_settings_update(**form.cleaned_data)
    audit_record(request=request, action="settings.update")
    messages.success(request, "Review settings saved.")
    return redirect("review:roster")


def _roster_member(user_id: int) -> User:
    # Only accounts that joined as staff are on the roster: a patient's id is not found here.
    member = User.objects.filter(pk=user_id, is_invited_staff=True).first()
    if member is None:
        raise Http404
    return member


@require_POST
@staff_page(action="staff.deactivate", need=admin_only)
def staff_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    member = _roster_member(user_id)
    try:
        staff_accounts.staff_member_deactivate(member=member, by=request_user(request))
    except staff_accounts.StaffAccountError as error:
        messages.error(request, str(error))
        return redirect("review:roster")
    audit_record(request=request, action="staff.deactivate", object_ref=f"user:{member.pk}")
    messages.success(request, staff_accounts.DEACTIVATED_MESSAGE.format(name=member))
    return redirect("review:roster")


@require_POST
@staff_page(action="staff.reactivate", need=admin_only)
def staff_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    member = _roster_member(user_id)
    staff_accounts.staff_member_reactivate(member=member)
    audit_record(request=request, action="staff.reactivate", object_ref=f"user:{member.pk}")
    messages.success(request, staff_accounts.REACTIVATED_MESSAGE.format(name=member))
    return redirect("review:roster")


@require_POST
@staff_page(action="staff.mfa_reset", need=admin_only)
def staff_mfa_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    member = _roster_member(user_id)
    removed = staff_accounts.staff_member_mfa_reset(member=member)
    audit_record(
        request=request, action="staff.mfa_reset", object_ref=f"user:{member.pk}", detail={"removed": removed}
    )
    messages.success(request, staff_accounts.MFA_RESET_MESSAGE.format(name=member))
    return redirect("review:roster")
