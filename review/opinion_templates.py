"""Opinion templates: the institution's (written by its administrators) and each reviewer's
own, chosen when a reviewer starts an opinion to fill its structured sections.

Applying a template never overwrites what the reviewer wrote: it fills the sections that are
still empty and says which it left alone.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from intake.models import Case
from review.access import opinion_templates_visible_to
from review.models import Opinion, OpinionTemplate
from review.services import OPINION_SIGNED_MESSAGE, ReviewError, opinion_draft_save

# The sections a template fills (the question is the patient's, the agreement the reviewer's
# judgement of this case: neither comes from a template).
TEMPLATE_FIELDS = ("patient_summary", "findings", "impression", "recommendation", "comments")
SECTION_LABELS = {
    "patient_summary": "summary for the patient",
    "findings": "findings",
    "impression": "impression",
    "recommendation": "recommendation",
    "comments": "comments",
}

TEMPLATE_NAME_MESSAGE = "Give the template a name."
TEMPLATE_EMPTY_MESSAGE = "A template needs text in at least one section."
TEMPLATE_INSTITUTION_ONLY_ADMINS_MESSAGE = "Only administrators can write the institution's templates."
TEMPLATE_PERSONAL_ONLY_REVIEWERS_MESSAGE = "Personal templates are for reviewers."
TEMPLATE_NOTHING_TO_FILL_MESSAGE = (
    "Every section the template fills already has your text; nothing was changed."
)

SCOPE_INSTITUTION = "institution"
SCOPE_PERSONAL = "personal"


def opinion_templates_for(user: User) -> list[OpinionTemplate]:
    """What ``user`` may choose from: the institution's templates, then their own."""
    return sorted(opinion_templates_visible_to(user), key=lambda t: (t.is_personal, t.name.lower(), t.pk))


def _validated(*, name: str, sections: dict[str, str]) -> dict[str, str]:
    if not name.strip():
        raise ReviewError(TEMPLATE_NAME_MESSAGE)
    cleaned = {field: (sections.get(field) or "").strip() for field in TEMPLATE_FIELDS}
    if cleaned["recommendation"] not in Opinion.Recommendation.values:
        cleaned["recommendation"] = ""
    if not any(cleaned.values()):
        raise ReviewError(TEMPLATE_EMPTY_MESSAGE)
    return cleaned


def opinion_template_create(*, by: User, scope: str, name: str, sections: dict[str, str]) -> OpinionTemplate:
    """A new template: the institution's (administrators only) or ``by``'s own (reviewers)."""
    if scope == SCOPE_INSTITUTION and not by.is_institution_admin:
        raise ReviewError(TEMPLATE_INSTITUTION_ONLY_ADMINS_MESSAGE)
    if scope != SCOPE_INSTITUTION and not by.is_reviewer:
        raise ReviewError(TEMPLATE_PERSONAL_ONLY_REVIEWERS_MESSAGE)
    cleaned = _validated(name=name, sections=sections)
    return OpinionTemplate.objects.create(
        name=name.strip(),
        owner=None if scope == SCOPE_INSTITUTION else by,
        created_by=by,
        **cleaned,
    )


def opinion_template_update(
    *, template: OpinionTemplate, name: str, sections: dict[str, str]
) -> OpinionTemplate:
    """Precondition: the caller got ``template`` through ``access_opinion_template(for_write=True)``."""
    cleaned = _validated(name=name, sections=sections)
    template.name = name.strip()
    for field, value in cleaned.items():
        setattr(template, field, value)
    template.save()
    return template


def opinion_template_delete(*, template: OpinionTemplate) -> None:
    """Precondition: as ``opinion_template_update``. Opinions started from it keep their text."""
    template.delete()


@transaction.atomic
def opinion_template_apply(
    *, case: Case, author: User, template: OpinionTemplate
) -> tuple[Opinion, list[str]]:
    """Fill the draft's empty sections from ``template``; returns the opinion and the labels of
    the sections left as the reviewer wrote them. Refused once signed, or when there is nothing
    to fill (nothing is saved then).

    Precondition: ``author`` is the case's reviewer and may use ``template`` (the view's access
    helpers)."""
    opinion = Opinion.objects.select_for_update().filter(case=case).first()
    if opinion is not None and opinion.is_signed:
        raise ReviewError(OPINION_SIGNED_MESSAGE)
    fills: dict[str, str] = {}
    kept: list[str] = []
    for field in TEMPLATE_FIELDS:
        text = getattr(template, field)
        if not text:
            continue
        if opinion is not None and getattr(opinion, field).strip():
            kept.append(SECTION_LABELS[field])
        else:
            fills[field] = text
    if not fills:
        raise ReviewError(TEMPLATE_NOTHING_TO_FILL_MESSAGE)
    return opinion_draft_save(case=case, author=author, data=fills), kept
