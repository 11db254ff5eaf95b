"""A staff member's notices: the in-app list and which of them also come by email."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from review import staff_notifications
from review.decorators import staff_page
from review.models import NotificationPreference, StaffNotification
from review.views.common import request_user


@require_GET
@staff_page(action="notifications.view")
def notifications(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    rows = staff_notifications.notifications_of(user)
    preference = NotificationPreference.objects.filter(user=user).first()
    email_off = set(preference.email_off) if preference else set()
    kinds = [(kind, label, kind not in email_off) for kind, label in StaffNotification.Kind.choices]
    response = render(request, "review/notifications.html", {"rows": rows, "kinds": kinds})
    staff_notifications.notifications_mark_read(user)  # seen now; the page showed them unread
    return response


@require_POST
@staff_page(action="notifications.preferences")
def notification_preferences(request: HttpRequest) -> HttpResponse:
    emailed = set(request.POST.getlist("email")) & set(StaffNotification.Kind.values)
    staff_notifications.email_preferences_set(user=request_user(request), emailed=emailed)
    messages.success(request, "Email preferences saved.")
    return redirect("review:notifications")
