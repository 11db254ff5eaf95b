"""Template tags of the image viewer (registered as the ``sr_viewer`` library in settings, since
imaging/viewer is a package of the review app and not an app of its own)."""

from __future__ import annotations

from typing import Any

from django import template

from imaging.cases import CaseRow
from imaging.viewer.selectors import viewer_bootstrap as _viewer_bootstrap

register = template.Library()


@register.simple_tag
def viewer_bootstrap(case: CaseRow) -> dict[str, Any]:
    """``{% viewer_bootstrap case as boot %}``: what the viewer needs before its first frame.
    Only for pages that already checked the user may see ``case``."""
    return _viewer_bootstrap(case=case)
