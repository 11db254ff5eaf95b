"""The "Key images" section of the opinion PDF: the images the reviewer marked in the viewer,
rendered on the server with the window the reviewer chose (so the PDF shows what they saw)."""

from __future__ import annotations

import io
import logging
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Image, KeepTogether, Paragraph, Spacer

from imaging.dicomweb.frames import FrameError, Window, frame_rendered
from imaging.viewer.annotations import key_images_of
from intake.models import Case

logger = logging.getLogger(__name__)

# Largest picture on the page (A4 less the margins) and the pixels rendered for it.
MAX_WIDTH = 120 * mm
MAX_HEIGHT = 110 * mm
RENDER_SIZE = (1000, 1000)
COULD_NOT_RENDER = gettext_noop("This key image could not be rendered.")


def key_image_flowables(*, case: Case, heading: ParagraphStyle, caption: ParagraphStyle) -> list[Any]:
    """Heading, then each key image with its caption (series, image number); nothing when the
    reviewer marked none. A picture that cannot be rendered is named, not fatal: the signed
    opinion must still be issued."""
    marked = key_images_of(case=case)
    if not marked:
        return []
    story: list[Any] = [Paragraph(_("Key images"), heading)]
    for position, key in enumerate(marked, start=1):
        series = key.instance.series
        words = [
            series.modality,
            series.description or "",
            _("series %(number)s") % {"number": series.series_number},
        ]
        text = _("Figure %(number)s.") % {"number": position} + " " + " · ".join(w for w in words if w)
        text += " · " + _("image %(number)s") % {"number": key.instance.instance_number or 1}
        if key.instance.number_of_frames > 1:
            text += ", " + _("frame %(number)s") % {"number": key.frame}
        window = (
            Window(key.window_center, key.window_width)
            if key.window_center is not None and key.window_width
            else None
        )
        try:
            png = frame_rendered(key.instance, key.frame, window=window, size=RENDER_SIZE)
        except (FrameError, OSError, ValueError):
            logger.warning("key image not rendered", extra={"annotation": str(key.public_id)})
            story.append(Paragraph(f"{text}. {_(COULD_NOT_RENDER)}", caption))
            continue
        picture = Image(io.BytesIO(png))
        scale = min(MAX_WIDTH / picture.imageWidth, MAX_HEIGHT / picture.imageHeight)
        picture.drawWidth, picture.drawHeight = picture.imageWidth * scale, picture.imageHeight * scale
        story.append(
            KeepTogether([picture, Spacer(1, 1.5 * mm), Paragraph(text, caption), Spacer(1, 4 * mm)])
        )
    return story
