"""Opinion templates: the page where reviewers keep their own and administrators the
institution's, and choosing one on the case page to start an opinion."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from audit.services import audit_record
from intake.models import Case
from review import opinion_templates as templates
from review.access import access_opinion_template
from review.decorators import case_endpoint, staff_page
from review.forms import OpinionTemplateForm, TemplateChoiceForm
from review.services import ReviewError
from review.views.common import back_to_case, request_user


def _writes_opinions_or_administers(user: User) -> bool:
    return user.is_reviewer or user.is_institution_admin


def _sections(form: OpinionTemplateForm) -> dict[str, str]:
    return {field: form.cleaned_data[field] for field in templates.TEMPLATE_FIELDS}


def _form_errors(form: OpinionTemplateForm) -> str:
    return "; ".join(" ".join(str(e) for e in errors) for errors in form.errors.values())


@require_http_methods(["GET", "POST"])
@staff_page(action="templates.view", need=_writes_opinions_or_administers)
def opinion_template_list(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    form = OpinionTemplateForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            messages.error(request, _form_errors(form))
        else:
            try:
                created = templates.opinion_template_create(
                    by=user,
                    scope=form.cleaned_data["scope"] or templates.SCOPE_PERSONAL,
                    name=form.cleaned_data["name"],
                    sections=_sections(form),
                )
            except ReviewError as error:
                messages.error(request, str(error))
            else:
                audit_record(request=request, action="template.create", object_ref=f"template:{created.pk}")
                messages.success(request, f"Template “{created.name}” saved.")
                return redirect("review:opinion_templates")
    return render(
        request,
        "review/opinion_templates.html",
        {"templates": templates.opinion_templates_for(user), "form": form},
    )


@require_http_methods(["GET", "POST"])
@staff_page(action="template.update", need=_writes_opinions_or_administers)
def opinion_template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = access_opinion_template(request_user(request), template_id, for_write=True)
    initial = {"name": template.name} | {f: getattr(template, f) for f in templates.TEMPLATE_FIELDS}
    form = OpinionTemplateForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not form.is_valid():
            messages.error(request, _form_errors(form))
        else:
            try:
                templates.opinion_template_update(
                    template=template, name=form.cleaned_data["name"], sections=_sections(form)
                )
            except ReviewError as error:
                messages.error(request, str(error))
            else:
                audit_record(request=request, action="template.update", object_ref=f"template:{template.pk}")
                messages.success(request, f"Template “{template.name}” saved.")
                return redirect("review:opinion_templates")
    return render(request, "review/opinion_template_edit.html", {"template": template, "form": form})


@require_POST
@staff_page(action="template.delete", need=_writes_opinions_or_administers)
def opinion_template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = access_opinion_template(request_user(request), template_id, for_write=True)
    name = template.name
    audit_record(request=request, action="template.delete", object_ref=f"template:{template.pk}")
    templates.opinion_template_delete(template=template)
    messages.success(request, f"Template “{name}” deleted.")
    return redirect("review:opinion_templates")


@require_POST
@case_endpoint(action="opinion.template", role="reviewer")
def opinion_template_apply(request: HttpRequest, case: Case) -> HttpResponse:
    form = TemplateChoiceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a template.")
        return back_to_case(case, "opinion")
    user = request_user(request)
    template = access_opinion_template(user, form.cleaned_data["template"])
    try:
        _, kept = templates.opinion_template_apply(case=case, author=user, template=template)
    except ReviewError as error:
        messages.error(request, str(error))
        return back_to_case(case, "opinion")
    message = f"Started from the template “{template.name}”."
    if kept:
        message += " Your text was kept in: " + ", ".join(kept) + "."
    messages.success(request, message)
    return back_to_case(case, "opinion")
