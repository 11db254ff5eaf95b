"""The case queue: filters in the URL, the search term in the session (never in a URL)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from review import services
from review.access import is_coordinator
from review.decorators import staff_page
from review.forms import SearchForm
from review.selectors import QUEUE_STATES, QueueFilters, case_queue
from review.views.common import queue_filters_query, request_user

SEARCH_SESSION_KEY = "review_queue_search"


@require_GET
@staff_page(action="queue.view")
def queue(request: HttpRequest) -> HttpResponse:
    """The queue. Filters without patient data (state, reviewer, due, urgency) are GET
    parameters, so a filtered view can be bookmarked; the search term (which may be a patient's
    name) is posted to ``queue_search`` and kept in the session, so it never appears in a URL,
    the browser history or an access log."""
    search = str(request.session.get(SEARCH_SESSION_KEY, ""))
    filters = QueueFilters.from_params(request.GET, search=search)
    page_number = request.GET.get("page", "1")
    result = case_queue(
        user=request_user(request),
        filters=filters,
        page_number=int(page_number) if page_number.isascii() and page_number.isdigit() else 1,
    )
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "review/queue.html",
        {
            "queue": result,
            "states": [(value, label, result.state_counts[value]) for value, label in QUEUE_STATES],
            "search_form": SearchForm(initial={"q": search}),
            "filter_query": params.urlencode(),
            "can_assign": is_coordinator(request.user),
            "assignable_states": services.ASSIGNABLE_STATES,
        },
    )


@require_POST
@staff_page(action="queue.search")
def queue_search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.POST)
    term = form.cleaned_data["q"].strip() if form.is_valid() and "clear" not in request.POST else ""
    if term:
        request.session[SEARCH_SESSION_KEY] = term
    else:
        request.session.pop(SEARCH_SESSION_KEY, None)
    return redirect(reverse("review:queue") + queue_filters_query(request.POST.get("filters", "")))
