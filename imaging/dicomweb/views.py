"""DICOMweb of one institution: QIDO-RS searches and WADO-RS retrieval (DICOM PS3.18).

Each view: find what the URL names through the access helpers (which check the user may see
the case, and audit refusals), record the access, answer. Every answer is ``private, no-store``:
images are patient data and must not stay in a shared browser's cache.
"""

# long module: the PS3.18 resources (search, metadata, retrieve, frames, rendered) at the study,
# series and instance levels share one decorator and answer helpers; side by side they are
# checked against the standard's table of resources in one read.

from __future__ import annotations

import functools
import io
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian

from imaging.dicomweb import selectors
from imaging.dicomweb.access import (
    DicomwebRefused,
    Scope,
    access_dicomweb_instance,
    access_dicomweb_scope,
    access_dicomweb_series,
    access_dicomweb_study,
    audit_dicomweb,
)
from imaging.dicomweb.frames import (
    FRAME_OUT_OF_RANGE,
    FRAMES_TOO_LARGE,
    MAX_FRAMES_PER_REQUEST,
    FrameError,
    StoredFile,
    frame_decoded,
    frame_rendered,
    frame_stored,
    frames_request_check,
    open_instance,
    parse_window,
)
from imaging.dicomweb.negotiation import (
    RENDERED_FORMATS,
    XML_TYPE,
    choose_frame_encoding,
    choose_metadata_format,
    choose_rendered_type,
    multipart_body,
    new_boundary,
    wants_stored_instance,
)
from imaging.dicomweb.qido import QueryError, parse_query
from imaging.dicomweb.xml import dicom_xml
from imaging.models import Instance
from storage.base import CHUNK_SIZE

DICOM_JSON = "application/dicom+json"
NOT_ACCEPTABLE = "None of the media types or transfer syntaxes in Accept can be produced for this resource."
BAD_FRAME_LIST = "Frame numbers must be a comma-separated list of whole numbers from 1."
DUPLICATE_FRAMES = "Each frame number may appear only once in a request."
TOO_MANY_FRAMES = f"Ask for at most {MAX_FRAMES_PER_REQUEST} frames in one request."
BAD_VIEWPORT = "viewport must be two whole numbers, width,height (each 1 to 2048)."
THUMBNAIL_SIZE = (128, 128)

ORIGIN_REFUSED = "This origin may not use this DICOMweb service (ask the institution to allow it)."
# What a browser on an allowed origin may send (PS3.18 §8.10: CORS for web clients).
CORS_HEADERS = "Authorization, Accept, Content-Type"
CORS_METHODS = "GET, HEAD, OPTIONS"

View = Callable[..., HttpResponseBase]


def _plain(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _cors(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Cross-origin reads for the origins the deployment allows (``DICOMWEB_CORS_ORIGINS``).
    Credentials (cookies) are never allowed cross-origin: a web client elsewhere uses an
    integration key, so no other site can read images with a signed-in user's session."""
    origin = request.headers.get("Origin")
    if origin and origin in settings.DICOMWEB_CORS_ORIGINS:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "Content-Type, Warning"
    response["Vary"] = "Origin"
    return response


def _preflight(request: HttpRequest) -> HttpResponseBase:
    origin = request.headers.get("Origin")
    if not origin or origin not in settings.DICOMWEB_CORS_ORIGINS:
        return _plain(403, ORIGIN_REFUSED)
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = CORS_METHODS
    response["Access-Control-Allow-Headers"] = CORS_HEADERS
    response["Access-Control-Max-Age"] = "600"
    return _cors(request, response)


def _without_body(response: HttpResponseBase) -> HttpResponseBase:
    """A HEAD answer: the GET's status and headers, no body (and no body produced: a streaming
    body's generator is dropped before it starts, so no file is opened; ``close()`` would also
    fire request_finished, which closes the request's database connection)."""
    head = HttpResponse(status=response.status_code)
    for name, value in response.items():
        if name.lower() != "content-length":
            head[name] = value
    return head


def dicomweb_view(view: View) -> View:
    """GET and HEAD (same answer without a body) and CORS preflight; refusals and bad input
    become short plain-text answers; nothing is cached."""

    @require_http_methods(["GET", "HEAD", "OPTIONS"])
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "OPTIONS":
            return _preflight(request)
        try:
            response = view(request, *args, **kwargs)
        except DicomwebRefused as refused:
            response = _plain(refused.status, refused.message)
            if refused.status == 401:
                response["WWW-Authenticate"] = 'Session realm="SecondRead"'
        except QueryError as error:
            response = _plain(400, str(error))
        except FrameError as error:
            status = {FRAME_OUT_OF_RANGE: 404, FRAMES_TOO_LARGE: 400}.get(error.message, 406)
            response = _plain(status, error.message)
        response["Cache-Control"] = "private, no-store"
        if request.method == "HEAD":
            response = _without_body(response)
        return _cors(request, response)

    return wrapped


def _base_url(request: HttpRequest, case_id: uuid.UUID | None) -> str:
    kwargs = {"case_id": case_id} if case_id else {}
    return request.build_absolute_uri(reverse("dicomweb:search_studies", kwargs=kwargs)).removesuffix(
        "/studies"
    )


def _search_format(request: HttpRequest) -> str:
    """ "json" or "xml" for a search; a 406 when the client accepts neither."""
    chosen = choose_metadata_format(request.headers.get("Accept", ""))
    if chosen is None:
        raise DicomwebRefused(406, NOT_ACCEPTABLE)
    return chosen


def _xml_parts(datasets: Iterator[bytes]) -> StreamingHttpResponse:
    boundary = new_boundary()
    parts = ((XML_TYPE, [document]) for document in datasets)
    return StreamingHttpResponse(
        multipart_body(parts, boundary),
        content_type=f'multipart/related; type="{XML_TYPE}"; boundary={boundary}',
    )


def _json(data: list[Any], ignored: list[str], answer_format: str = "json") -> HttpResponseBase:
    response: HttpResponseBase
    if answer_format == "xml":
        response = _xml_parts(dicom_xml(item) for item in data)
    else:
        response = HttpResponse(json.dumps(data, separators=(",", ":")), content_type=DICOM_JSON)
    if ignored:
        # PS3.18 §8.3.4: keys the server cannot match on are named in a Warning, not refused.
        response["Warning"] = f'299 SecondRead "Matching is not supported on: {", ".join(sorted(ignored))}"'
    return response


# --- QIDO-RS --------------------------------------------------------------------------------


@dicomweb_view
def search_studies(request: HttpRequest, case_id: uuid.UUID | None = None) -> HttpResponseBase:
    answer_format = _search_format(request)
    scope = access_dicomweb_scope(request, case_id=case_id, kind="search_studies")
    query = parse_query(request.GET, level="study")
    studies = selectors.study_search(scope=scope, query=query)
    audit_dicomweb(request, kind="search_studies", scope=scope, study=None, ref="")
    return _json(
        selectors.study_search_json(studies=studies, query=query, base_url=_base_url(request, case_id)),
        query.ignored,
        answer_format,
    )


@dicomweb_view
def search_series(
    request: HttpRequest, study_uid: str | None = None, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    answer_format = _search_format(request)
    scope = access_dicomweb_scope(request, case_id=case_id, kind="search_series")
    study = (
        access_dicomweb_study(request, scope=scope, study_uid=study_uid, kind="search_series")
        if study_uid
        else None
    )
    query = parse_query(request.GET, level="series")
    results = selectors.series_search(
        scope=scope, study=study, query=query, base_url=_base_url(request, case_id)
    )
    audit_dicomweb(request, kind="search_series", scope=scope, study=study, ref=study_uid or "")
    return _json(results, query.ignored, answer_format)


@dicomweb_view
def search_instances(
    request: HttpRequest,
    study_uid: str | None = None,
    series_uid: str | None = None,
    case_id: uuid.UUID | None = None,
) -> HttpResponseBase:
    answer_format = _search_format(request)
    scope = access_dicomweb_scope(request, case_id=case_id, kind="search_instances")
    study = series = None
    if study_uid and series_uid:
        series = access_dicomweb_series(
            request, scope=scope, study_uid=study_uid, series_uid=series_uid, kind="search_instances"
        )
        study = series.study
    elif study_uid:
        study = access_dicomweb_study(request, scope=scope, study_uid=study_uid, kind="search_instances")
    query = parse_query(request.GET, level="instance")
    results = selectors.instance_search(
        scope=scope, study=study, series=series, query=query, base_url=_base_url(request, case_id)
    )
    audit_dicomweb(
        request, kind="search_instances", scope=scope, study=study, ref=series_uid or study_uid or ""
    )
    return _json(results, query.ignored, answer_format)


# --- WADO-RS: metadata ----------------------------------------------------------------------


def _metadata_response(request: HttpRequest, instances: list[Instance]) -> StreamingHttpResponse:
    if _search_format(request) == "xml":
        return _xml_parts(
            dicom_xml(json.loads(selectors.instance_metadata_bytes(instance))) for instance in instances
        )
    return StreamingHttpResponse(selectors.metadata_stream(instances), content_type=DICOM_JSON)


def _study_instances(
    request: HttpRequest, *, kind: str, case_id: uuid.UUID | None, study_uid: str
) -> list[Instance]:
    """The instances of a study the request may read, the access audited (study-level resources)."""
    scope = access_dicomweb_scope(request, case_id=case_id, kind=kind)
    study = access_dicomweb_study(request, scope=scope, study_uid=study_uid, kind=kind)
    audit_dicomweb(request, kind=kind, scope=scope, study=study, ref=study_uid)
    return selectors.instances_of(study=study)


def _series_instances(
    request: HttpRequest, *, kind: str, case_id: uuid.UUID | None, study_uid: str, series_uid: str
) -> list[Instance]:
    """The instances of a series the request may read, the access audited (series-level resources)."""
    scope = access_dicomweb_scope(request, case_id=case_id, kind=kind)
    series = access_dicomweb_series(
        request, scope=scope, study_uid=study_uid, series_uid=series_uid, kind=kind
    )
    audit_dicomweb(request, kind=kind, scope=scope, study=series.study, ref=series_uid)
    return selectors.instances_of(study=series.study, series=series)


@dicomweb_view
def study_metadata(
    request: HttpRequest, study_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    return _metadata_response(
        request, _study_instances(request, kind="metadata", case_id=case_id, study_uid=study_uid)
    )


@dicomweb_view
def series_metadata(
    request: HttpRequest, study_uid: str, series_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    return _metadata_response(
        request,
        _series_instances(
            request, kind="metadata", case_id=case_id, study_uid=study_uid, series_uid=series_uid
        ),
    )


def _instance(
    request: HttpRequest, kind: str, case_id: uuid.UUID | None, **uids: str
) -> tuple[Scope, Instance]:
    scope = access_dicomweb_scope(request, case_id=case_id, kind=kind)
    instance = access_dicomweb_instance(request, scope=scope, kind=kind, **uids)
    audit_dicomweb(
        request,
        kind=kind,
        scope=scope,
        study=instance.series.study,
        ref=uids["instance_uid"],
        series_uid=uids["series_uid"],
    )
    return scope, instance


@dicomweb_view
def instance_metadata(
    request: HttpRequest, study_uid: str, series_uid: str, instance_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    _, instance = _instance(
        request, "metadata", case_id, study_uid=study_uid, series_uid=series_uid, instance_uid=instance_uid
    )
    return _metadata_response(request, [instance])


# --- WADO-RS: instances ---------------------------------------------------------------------


def _instance_chunks(instance: Instance, *, decompress: bool) -> Iterator[bytes]:
    with open_instance(instance) as stream:
        if not decompress:
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk
            return
        # Converting needs the whole instance in memory (one instance, not the study).
        dataset = dcmread(stream)
        if dataset.file_meta.TransferSyntaxUID.is_compressed:
            dataset.decompress()
        else:  # Implicit VR Little Endian: the same pixels, written with explicit VRs
            dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        out = io.BytesIO()
        dataset.save_as(out, enforce_file_format=True)
        yield out.getvalue()


def _instances_response(request: HttpRequest, instances: list[Instance]) -> HttpResponseBase:
    accept = request.headers.get("Accept", "")
    plan = []
    for instance in instances:
        as_stored = wants_stored_instance(accept, instance.transfer_syntax_uid)
        if as_stored is None:
            return _plain(406, NOT_ACCEPTABLE)
        syntax = instance.transfer_syntax_uid if as_stored else ExplicitVRLittleEndian
        plan.append((instance, not as_stored, syntax))
    boundary = new_boundary()
    parts = (
        (f"application/dicom; transfer-syntax={syntax}", _instance_chunks(instance, decompress=decompress))
        for instance, decompress, syntax in plan
    )
    return StreamingHttpResponse(
        multipart_body(parts, boundary),
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


@dicomweb_view
def retrieve_study(
    request: HttpRequest, study_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    return _instances_response(
        request, _study_instances(request, kind="retrieve_study", case_id=case_id, study_uid=study_uid)
    )


@dicomweb_view
def retrieve_series(
    request: HttpRequest, study_uid: str, series_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    return _instances_response(
        request,
        _series_instances(
            request, kind="retrieve_series", case_id=case_id, study_uid=study_uid, series_uid=series_uid
        ),
    )


@dicomweb_view
def retrieve_instance(
    request: HttpRequest, study_uid: str, series_uid: str, instance_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    _, instance = _instance(
        request,
        "retrieve_instance",
        case_id,
        study_uid=study_uid,
        series_uid=series_uid,
        instance_uid=instance_uid,
    )
    return _instances_response(request, [instance])


# --- WADO-RS: frames and rendered pictures --------------------------------------------------


def _frame_numbers(text: str) -> list[int]:
    parts = text.split(",")
    if len(parts) > MAX_FRAMES_PER_REQUEST:
        raise QueryError(TOO_MANY_FRAMES)
    if not all(part.isascii() and part.isdigit() and len(part) <= 9 for part in parts):
        raise QueryError(BAD_FRAME_LIST)
    numbers = [int(part) for part in parts]
    if min(numbers) < 1:
        raise QueryError(BAD_FRAME_LIST)
    if len(set(numbers)) != len(numbers):
        raise QueryError(DUPLICATE_FRAMES)
    return numbers


@dicomweb_view
def retrieve_frames(
    request: HttpRequest,
    study_uid: str,
    series_uid: str,
    instance_uid: str,
    frames: str,
    case_id: uuid.UUID | None = None,
) -> HttpResponseBase:
    numbers = _frame_numbers(frames)  # QueryError: 400
    _, instance = _instance(
        request, "frames", case_id, study_uid=study_uid, series_uid=series_uid, instance_uid=instance_uid
    )
    choice = choose_frame_encoding(request.headers.get("Accept", ""), instance.transfer_syntax_uid)
    if choice is None:
        return _plain(406, NOT_ACCEPTABLE)
    # Checked before the answer starts (a missing frame is a clean 404, too many bytes a 400);
    # then each frame is produced as it is sent, so the request holds one frame at a time.
    stored = StoredFile(instance)  # the header is read once, each frame in its own range
    frames_request_check(stored, numbers, decode=choice.decode)

    def produce(number: int) -> tuple[str, list[bytes]]:
        frame = frame_decoded(stored, number) if choice.decode else frame_stored(stored, number)
        return f"{choice.part_type}; transfer-syntax={frame.transfer_syntax_uid}", [frame.data]

    # The first frame is made before the answer starts: a compression the server cannot decode
    # is then a clean 406 (FrameError), not a body broken half-way.
    first = produce(numbers[0])

    def parts() -> Iterator[tuple[str, list[bytes]]]:
        yield first
        for number in numbers[1:]:
            yield produce(number)

    boundary = new_boundary()
    return StreamingHttpResponse(
        multipart_body(parts(), boundary),
        content_type=(
            f'multipart/related; type="{choice.part_type}"; '
            f"transfer-syntax={choice.transfer_syntax}; boundary={boundary}"
        ),
    )


def _picture(
    request: HttpRequest, instance: Instance, number: int, size: tuple[int, int] | None
) -> HttpResponse:
    window = parse_window(request.GET.get("window", ""))
    viewport = request.GET.get("viewport")
    if viewport:
        try:
            width, height = (int(part) for part in viewport.split(",")[:2])
        except ValueError:
            return _plain(400, BAD_VIEWPORT)
        if not (0 < width <= 2048 and 0 < height <= 2048):
            return _plain(400, BAD_VIEWPORT)
        size = (width, height)
    media_type = choose_rendered_type(request.headers.get("Accept", ""))
    if media_type is None:
        return _plain(406, NOT_ACCEPTABLE)
    data = frame_rendered(
        instance, number, window=window, size=size, image_format=RENDERED_FORMATS[media_type]
    )
    return HttpResponse(data, content_type=media_type)


def _pictures(request: HttpRequest, instances: list[Instance]) -> HttpResponseBase:
    """Study- and series-level rendered resources (PS3.18 §8.3.5.1.1): a multipart/related body
    of each instance's first frame, rendered one at a time as the body is sent."""
    media_type = choose_rendered_type(request.headers.get("Accept", ""))
    if media_type is None:
        return _plain(406, NOT_ACCEPTABLE)
    window = parse_window(request.GET.get("window", ""))
    boundary = new_boundary()
    image_format = RENDERED_FORMATS[media_type]

    def parts() -> Iterator[tuple[str, list[bytes]]]:
        # Each picture is drawn before its part begins, so one that cannot be drawn (a video,
        # a compression the server cannot decode) is left out instead of breaking the body.
        for instance in instances:
            try:
                picture = frame_rendered(instance, 1, window=window, size=None, image_format=image_format)
            except FrameError:
                continue
            yield media_type, [picture]

    return StreamingHttpResponse(
        multipart_body(parts(), boundary),
        content_type=f'multipart/related; type="{media_type}"; boundary={boundary}',
    )


@dicomweb_view
def study_rendered(
    request: HttpRequest, study_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    return _pictures(
        request, _study_instances(request, kind="rendered", case_id=case_id, study_uid=study_uid)
    )


@dicomweb_view
def series_rendered(
    request: HttpRequest, study_uid: str, series_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    return _pictures(
        request,
        _series_instances(
            request, kind="rendered", case_id=case_id, study_uid=study_uid, series_uid=series_uid
        ),
    )


@dicomweb_view
def instance_rendered(
    request: HttpRequest,
    study_uid: str,
    series_uid: str,
    instance_uid: str,
    frame: int = 1,
    case_id: uuid.UUID | None = None,
) -> HttpResponseBase:
    _, instance = _instance(
        request, "rendered", case_id, study_uid=study_uid, series_uid=series_uid, instance_uid=instance_uid
    )
    return _picture(request, instance, frame, None)


@dicomweb_view
def instance_thumbnail(
    request: HttpRequest, study_uid: str, series_uid: str, instance_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    _, instance = _instance(
        request, "thumbnail", case_id, study_uid=study_uid, series_uid=series_uid, instance_uid=instance_uid
    )
    return _picture(request, instance, 1, THUMBNAIL_SIZE)


@dicomweb_view
def series_thumbnail(
    request: HttpRequest, study_uid: str, series_uid: str, case_id: uuid.UUID | None = None
) -> HttpResponseBase:
    scope = access_dicomweb_scope(request, case_id=case_id, kind="thumbnail")
    series = access_dicomweb_series(
        request, scope=scope, study_uid=study_uid, series_uid=series_uid, kind="thumbnail"
    )
    audit_dicomweb(request, kind="thumbnail", scope=scope, study=series.study, ref=series_uid)
    instances = selectors.instances_of(study=series.study, series=series)
    if not instances:
        raise FrameError(FRAME_OUT_OF_RANGE)
    # The middle image shows the anatomy better than the first slice of a stack.
    return _picture(request, instances[len(instances) // 2], 1, THUMBNAIL_SIZE)
