"""What the viewer page carries with it, so the first image needs no request but its pixels.

Without this the viewer asked, one after the other, for the case's studies, each study's series,
the first series' instances and the first instance's metadata before it could ask for a frame:
four round trips (60-250 ms each under load) after a 4 MB bundle had been parsed. The page now
holds all four answers as JSON (the same DICOM JSON the DICOMweb endpoints give) and the URL of
the first frame, which a few lines of inline script start fetching while the page is parsed.
"""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from imaging.cases import CaseRow
from imaging.dicomweb.selectors import instance_metadata_bytes
from imaging.models import Instance, Series, Study

# Frames the server hands out as raw little-endian pixels without decoding anything.
NATIVE = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})
# Asked for the first frame: raw pixels, decoded on the server if stored compressed, so the
# page's first picture needs no codec in the browser (Accept of WADO-RS frames, PS3.18 §8.7.3).
FIRST_FRAME_ACCEPT = (
    f'multipart/related; type="application/octet-stream"; transfer-syntax={ExplicitVRLittleEndian}'
)


def _server_decodes(transfer_syntax: str) -> bool:
    """True if frames in ``transfer_syntax`` can be served raw (as stored, or decoded here)."""
    if transfer_syntax in NATIVE or not transfer_syntax:
        return True
    try:
        return bool(get_decoder(transfer_syntax).is_available)
    except NotImplementedError:  # video and other syntaxes pydicom has no decoder for
        return False


def _series_json(series: Series, study: Study) -> dict[str, Any]:
    return {
        "studyUid": study.study_instance_uid,
        "uid": series.series_instance_uid,
        "modality": series.modality,
        "description": series.description,
        "number": series.series_number,
        "count": series.n_instances,  # type: ignore[attr-defined]
        # The study's date (series carry none of their own here), as DICOM writes it.
        "date": study.study_date.strftime("%Y%m%d") if study.study_date else "",
    }


def viewer_bootstrap(*, case: CaseRow, studies: list[Study] | None = None) -> dict[str, Any]:
    """The case's studies and series, and the first series' instances with the first instance's
    metadata and first frame URL.

    Precondition: the requesting user may see ``case`` (the page that calls this checked it with
    ``access_case`` and audited the opening). Shapes match what frontend/src/viewer/dicomweb.js
    builds from QIDO-RS answers, so the viewer handles both alike.

    ``studies``: the case's studies with their ``series`` prefetched, when the page read them
    already (the staff case page): two queries fewer.
    """
    base = reverse("dicomweb:search_studies", kwargs={"case_id": case.public_id}).removesuffix("/studies")
    if studies is None:
        # Studies left out of the case (by the patient or staff) are not shown.
        studies = list(Study.objects.included().filter(case=case).order_by("study_date", "id"))
        series_rows = list(
            Series.objects.filter(study__case=case, study__excluded_at__isnull=True).order_by(
                "series_number", "id"
            )
        )
    else:
        series_rows = sorted(
            (s for study in studies for s in study.series.all()),
            key=lambda s: (s.series_number is None, s.series_number or 0, s.pk),
        )
    for series in series_rows:
        # The count ingest keeps on the row, not a count over every instance at each page view.
        series.n_instances = series.instance_count  # type: ignore[attr-defined]
    by_pk = {study.pk: study for study in studies}
    listed = [
        {
            "uid": study.study_instance_uid,
            "description": study.description or "Study",
            "date": study.study_date.strftime("%Y%m%d") if study.study_date else "",
            "series": [_series_json(s, study) for s in series_rows if s.study_id == study.pk],
        }
        for study in studies
    ]
    boot: dict[str, Any] = {"base": base, "studies": listed, "first": None}
    # The series shown first: the first one with images, in the order of the list.
    first_series = next(
        (s for study in studies for s in series_rows if s.study_id == study.pk and s.n_instances),  # type: ignore[attr-defined]
        None,
    )
    if first_series is None:
        return boot
    # With their pixel index (a few bytes each but for multi-frames): the first one's metadata
    # is then one ranged read, and no second query fetches its row.
    instances = list(
        Instance.objects.filter(series=first_series)
        .order_by("instance_number", "id")
        .only(
            "sop_instance_uid",
            "number_of_frames",
            "transfer_syntax_uid",
            "storage_key",
            "storage_offset",
            "size",
            "header_length",
            "pixel_data_offset",
            "frames_encapsulated",
            "frame_spans",
        )
    )
    if not instances:  # counted but not indexed yet (an ingest in progress): no first frame
        return boot
    first = instances[0]
    study_uid = by_pk[first_series.study_id].study_instance_uid
    frame_url = (
        f"{base}/studies/{study_uid}/series/{first_series.series_instance_uid}"
        f"/instances/{first.sop_instance_uid}/frames/1"
    )
    boot["first"] = {
        "seriesUid": first_series.series_instance_uid,
        # [SOP Instance UID, number of frames] in display order: the whole stack's image ids.
        "instances": [[row.sop_instance_uid, row.number_of_frames or 1] for row in instances],
        "metadata": json.loads(instance_metadata_bytes(first)),
        # Only when the server can give raw pixels; otherwise (video) the viewer explains.
        "frameUrl": frame_url if _server_decodes(first.transfer_syntax_uid) else None,
        "decoded": first.transfer_syntax_uid not in NATIVE,
        "accept": FIRST_FRAME_ACCEPT,
    }
    return boot
