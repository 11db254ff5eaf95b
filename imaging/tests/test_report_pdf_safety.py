"""Report PDFs lose their active content at ingest: staff read a rewritten copy in which no
script, automatic action, launch action, embedded file or XFA form is left; the bytes the patient
sent are kept beside it, offered only as a download."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pikepdf
import pytest
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from audit.models import AuditEvent
from imaging.ingest.pdf_safety import pdf_make_safe, report_original_key
from imaging.ingest.pipeline import upload_ingest_run
from imaging.models import Report, Upload
from imaging.tests.fixtures.ingest import case_make, report_pdf, upload_make
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution
from tests.staff import staff_force_login

ALERT = "app.alert('pwned')"


def hostile_pdf() -> bytes:
    """A real report PDF (with text) carrying every kind of active content we remove."""
    pdf = pikepdf.open(io.BytesIO(report_pdf(["MRI BRAIN WITH CONTRAST", "Date of exam: 3 March 2024"])))
    script = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(ALERT)))
    pdf.Root.OpenAction = script
    pdf.Root.AA = pikepdf.Dictionary(WC=script)
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("x"), script])),
        EmbeddedFiles=pikepdf.Dictionary(Names=pikepdf.Array([])),
    )
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([]), XFA=pikepdf.String("<xdp/>"))
    page = pdf.pages[0]
    page.obj.AA = pikepdf.Dictionary(O=script)
    launch = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Link,
        Rect=pikepdf.Array([0, 0, 100, 100]),
        A=pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("calc.exe")),
    )
    attachment = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.FileAttachment,
        Rect=pikepdf.Array([0, 0, 10, 10]),
        FS=pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F=pikepdf.String("payload.exe")),
    )
    web_link = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Link,
        Rect=pikepdf.Array([0, 100, 100, 200]),
        A=pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String("https://hospital.example.com/")),
    )
    page.obj.Annots = pdf.make_indirect(
        pikepdf.Array([pdf.make_indirect(launch), pdf.make_indirect(attachment), pdf.make_indirect(web_link)])
    )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def active_content(data: bytes) -> list[str]:
    """What in ``data`` could act: script or action keys and kinds, anywhere in the file."""
    found: list[str] = []

    def visit(obj: object) -> None:
        if isinstance(obj, pikepdf.Stream):
            obj = obj.stream_dict
        if isinstance(obj, pikepdf.Dictionary):
            found.extend(key for key in ("/JS", "/OpenAction", "/AA", "/EmbeddedFiles", "/XFA") if key in obj)
            if str(obj.get("/S", "")) in ("/JavaScript", "/Launch"):
                found.append(str(obj.get("/S")))
            if str(obj.get("/Subtype", "")) == "/FileAttachment":
                found.append("/FileAttachment")
            children = [value for _, value in obj.items()]
        elif isinstance(obj, pikepdf.Array):
            children = list(obj)
        else:
            return
        for child in children:
            if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
                visit(child)

    with pikepdf.open(io.BytesIO(data)) as pdf:
        for obj in pdf.objects:
            visit(obj)
    return found


def test_the_hostile_pdf_really_carries_active_content() -> None:
    assert {"/JS", "/OpenAction", "/AA", "/EmbeddedFiles", "/XFA", "/Launch", "/FileAttachment"} <= set(
        active_content(hostile_pdf())
    )


def test_it_rewrites_a_pdf_without_scripts_actions_attachments_or_xfa() -> None:
    safe = pdf_make_safe(io.BytesIO(hostile_pdf()))
    data = safe.file.read()
    assert active_content(data) == []
    assert ALERT.encode() not in data
    assert {"/OpenAction", "/JavaScript", "/EmbeddedFiles", "/XFA", "/Launch"} <= set(safe.removed)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        annotations = list(pdf.pages[0].obj.Annots)
        # An ordinary web link stays usable.
        links = [str(a.A.get("/URI", "")) for a in annotations if "/A" in a]
        assert "https://hospital.example.com/" in links


def test_it_leaves_an_ordinary_pdf_readable_and_says_nothing_was_removed() -> None:
    safe = pdf_make_safe(io.BytesIO(report_pdf(["CT HEAD", "19 January 2004"])))
    assert safe.removed == []
    assert safe.file.read().startswith(b"%PDF-")


@pytest.fixture
def case(neuro: Institution) -> Iterator[Case]:
    with tenant_context(neuro):
        yield case_make("neuro")


def _ingest_hostile(case: Case) -> tuple[Report, bytes]:
    original = hostile_pdf()
    upload = upload_make(
        case, original, path="report.pdf", kind="report", metadata={"reportKind": "radiology"}
    )
    upload_ingest_run(upload_id=upload.pk, previews_now=False)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.DONE
    return Report.objects.get(upload=upload), original


def test_ingest_stores_the_rewritten_copy_and_keeps_the_original_beside_it(case: Case) -> None:
    report, original = _ingest_hostile(case)
    stored = tenant_storage().read_bytes(report.storage_key)
    assert active_content(stored) == []
    assert "MRI BRAIN WITH CONTRAST" in report.extracted_text
    assert tenant_storage().read_bytes(report_original_key(report.storage_key)) == original


@pytest.fixture
def hostile_case(neuro: Institution, make_case: Callable[..., Case]) -> tuple[Case, Report, bytes]:
    case = make_case()
    with tenant_context(neuro):
        report, original = _ingest_hostile(case)
    return case, report, original


def test_staff_get_the_safe_copy_and_the_original_only_as_downloads(
    neuro: Institution, hostile_case: tuple[Case, Report, bytes], staff_client: Callable[[str], Client]
) -> None:
    case, report, original = hostile_case
    client = staff_client("coordinator")
    base = f"/workspace/cases/{case.public_id}/reports/{report.public_id}"
    safe = client.get(f"{base}/file")
    assert safe.status_code == 200
    assert safe["Content-Type"] == "application/pdf"
    assert safe["Content-Disposition"].startswith("attachment")
    assert safe["Content-Security-Policy"].startswith("sandbox")
    assert active_content(safe.getvalue()) == []
    as_sent = client.get(f"{base}/original")
    assert as_sent.status_code == 200
    assert as_sent["Content-Type"] == "application/octet-stream"
    assert as_sent["Content-Disposition"].startswith("attachment")
    assert as_sent.getvalue() == original
    with schema_context(neuro.schema_name):
        assert AuditEvent.objects.filter(action="report.original", case_id=case.pk, allowed=True).exists()
    page = client.get(f"/workspace/cases/{case.public_id}/").content.decode()
    assert "Download the file as the patient sent it" in page
    assert "Open the report in a new tab" not in page


def test_outsiders_cannot_download_the_original(
    neuro: Institution,
    hostile_case: tuple[Case, Report, bytes],
    staff_client: Callable[[str], Client],
    neuro_client: Client,
    cancer_client: Client,
) -> None:
    case, report, _ = hostile_case
    url = f"/workspace/cases/{case.public_id}/reports/{report.public_id}/original"
    signed_out = neuro_client.get(url)
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]
    assert staff_client("reviewer2").get(url).status_code == 404  # not assigned to this case
    staff_force_login(cancer_client, "coordinator@cancer.example.com")
    assert cancer_client.get(url).status_code == 404
    patient = Client(HTTP_HOST="neuro.localhost")
    staff_force_login(patient, "patient@neuro.example.com")
    assert patient.get(url).status_code in (403, 404)
