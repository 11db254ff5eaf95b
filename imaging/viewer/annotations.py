"""Measurements and key images a reviewer saves from the viewer (``ImageAnnotation``).

Who may: the institution's staff who can see the case (``access_case``: reviewers only the cases
assigned to them, coordinators and admins every submitted case). Patients see their images in
the same viewer but never the staff's marks. Every read and write is audited by the API views.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from accounts.models import User
from imaging.cases import CaseRow, access_case
from imaging.models import ImageAnnotation, Instance

# Messages the viewer shows as they are (and the tests reuse).
UNKNOWN_IMAGE = "That image is not part of this case."
BAD_KIND = "Unknown kind of mark."
BAD_POINTS = "The mark's points are not valid image coordinates."
BAD_FRAME = "That frame does not exist in the image."
BAD_WINDOW = "The window must be two numbers, the width above zero."
LABEL_TOO_LONG = "The label is too long (200 characters at most)."

# How many points each kind of mark has (a key image has none).
POINTS = {
    ImageAnnotation.Kind.LENGTH: 2,
    ImageAnnotation.Kind.ANGLE: 3,
    ImageAnnotation.Kind.ELLIPSE: 2,  # two opposite corners of the ellipse's bounding box
    ImageAnnotation.Kind.KEY_IMAGE: 0,
}


class AnnotationInvalid(ValueError):
    """Input the viewer sent that cannot be saved; ``str()`` is the message for the reader."""


def access_case_for_marks(user: User | AnonymousUser, case_id: uuid.UUID | str) -> CaseRow:
    """The case if ``user`` is staff who may see it: 404 for those who cannot see it at all
    (another institution, another reviewer's case, signed out), 403 for its own patient."""
    case = access_case(user, case_id)
    if not getattr(user, "is_institution_staff", False):
        raise PermissionDenied
    return case


@dataclass(frozen=True)
class AnnotationInput:
    kind: str
    sop_uid: str
    frame: int
    points: list[list[float]]
    label: str
    window: tuple[float, float] | None


def annotation_input_parse(data: Any) -> AnnotationInput:
    """Checks what the viewer sent (a JSON object); raises ``AnnotationInvalid``."""
    if not isinstance(data, dict):
        raise AnnotationInvalid(BAD_POINTS)
    kind = data.get("kind")
    if kind not in POINTS:
        raise AnnotationInvalid(BAD_KIND)
    sop_uid = data.get("sopInstanceUid")
    if not isinstance(sop_uid, str) or not 0 < len(sop_uid) <= 64:
        raise AnnotationInvalid(UNKNOWN_IMAGE)
    frame = data.get("frame", 1)
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 1:
        raise AnnotationInvalid(BAD_FRAME)
    points = data.get("points") or []
    if (
        not isinstance(points, list)
        or len(points) != POINTS[kind]
        or not all(
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in p)
            for p in points
        )
    ):
        raise AnnotationInvalid(BAD_POINTS)
    label = data.get("label") or ""
    if not isinstance(label, str):
        raise AnnotationInvalid(LABEL_TOO_LONG)
    if len(label) > 200:
        raise AnnotationInvalid(LABEL_TOO_LONG)
    window = None
    if data.get("window") is not None:
        raw = data["window"]
        if (
            not isinstance(raw, list)
            or len(raw) != 2
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in raw
            )
            or raw[1] <= 0
        ):
            raise AnnotationInvalid(BAD_WINDOW)
        window = (float(raw[0]), float(raw[1]))
    return AnnotationInput(kind, sop_uid, frame, [[float(x), float(y)] for x, y in points], label, window)


def annotation_create(*, case: CaseRow, author: User, data: AnnotationInput) -> ImageAnnotation:
    """Saves a mark on an image of ``case``. Precondition: ``author`` passed
    ``access_case_for_marks`` for ``case``. Nothing is stored if the input does not fit the image."""
    instance = Instance.objects.filter(series__study__case=case, sop_instance_uid=data.sop_uid).first()
    if instance is None:
        raise AnnotationInvalid(UNKNOWN_IMAGE)
    if data.frame > max(instance.number_of_frames, 1):
        raise AnnotationInvalid(BAD_FRAME)
    # A mark may reach past the image's edge (an ellipse drawn around a structure at the
    # border), not further than one image width or height.
    rows, columns = instance.rows or 0, instance.columns or 0
    if rows and columns:
        for x, y in data.points:
            if not (-columns <= x <= 2 * columns and -rows <= y <= 2 * rows):
                raise AnnotationInvalid(BAD_POINTS)
    return ImageAnnotation.objects.create(
        case=case,
        instance=instance,
        frame=data.frame,
        kind=data.kind,
        points=data.points,
        label=data.label,
        window_center=data.window[0] if data.window else None,
        window_width=data.window[1] if data.window else None,
        author=author,
    )


def annotation_delete(*, case: CaseRow, public_id: uuid.UUID) -> bool:
    """Removes one mark of ``case``; False when there is no such mark on this case."""
    deleted, _ = ImageAnnotation.objects.filter(case=case, public_id=public_id).delete()
    return bool(deleted)


def annotations_of(*, case: CaseRow) -> list[ImageAnnotation]:
    return list(
        ImageAnnotation.objects.filter(case=case)
        .select_related("instance__series__study", "author")
        .order_by("created", "id")
    )


def key_images_of(*, case: CaseRow) -> list[ImageAnnotation]:
    """The key images of ``case`` in the order they were marked (for the opinion PDF)."""
    return [a for a in annotations_of(case=case) if a.kind == ImageAnnotation.Kind.KEY_IMAGE]


def annotation_json(annotation: ImageAnnotation) -> dict[str, Any]:
    series = annotation.instance.series
    return {
        "id": str(annotation.public_id),
        "kind": annotation.kind,
        "studyUid": series.study.study_instance_uid,
        "seriesUid": series.series_instance_uid,
        "sopInstanceUid": annotation.instance.sop_instance_uid,
        "frame": annotation.frame,
        "points": annotation.points,
        "label": annotation.label,
        "window": (
            [annotation.window_center, annotation.window_width]
            if annotation.window_width is not None
            else None
        ),
        "author": annotation.author.full_name or annotation.author.email,
        "created": annotation.created.isoformat(),
    }
