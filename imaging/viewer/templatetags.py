"""Template tags of the image viewer (registered as the ``sr_viewer`` library in settings, since
imaging/viewer is a package of the review app and not an app of its own)."""

from __future__ import annotations

from typing import Any

from django import template

from imaging.cases import CaseRow
from imaging.viewer.selectors import viewer_bootstrap as _viewer_bootstrap

register = template.Library()


@register.simple_tag(takes_context=True)
def viewer_bootstrap(context: template.Context, case: CaseRow) -> dict[str, Any]:
    """``{% viewer_bootstrap case as boot %}``: what the viewer needs before its first frame.
    Only for pages that already checked the user may see ``case``. A page that read the case's
    studies with their series puts them in its context as ``viewer_studies`` (no second read)."""
    return _viewer_bootstrap(case=case, studies=context.get("viewer_studies"))
