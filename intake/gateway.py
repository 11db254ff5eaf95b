"""The DICOM C-STORE gateway (``./sr manage dicom_gateway``): a hospital's PACS or modality on a
VPN sends studies by DIMSE to the institution's AE title, and they land in a case.

Called AE title → institution: the institution's slug in capitals (first 16 characters), e.g.
``NEURO``. Each instance received goes to the case whose number is its Accession Number (a
referring site puts our case number there), or else to the institution's DICOM inbox case,
where a coordinator finds it. Each instance becomes an upload of that case, stored before the
C-STORE is answered, and goes through the same ingest pipeline as a patient's files.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from imaging.cases import cases_for_integrations
from imaging.ingest.pipeline import upload_ingest_enqueue
from imaging.models import Upload
from intake.models import Case
from storage.tenant import tenant_storage
from tenants.models import Institution

INBOX_NUMBER = "DICOM-INBOX"
UNKNOWN_AE = 0x0124  # C-STORE "Refused: not authorised": no institution has this AE title
OUT_OF_RESOURCES = 0xA700


def gateway_ae_title(institution: Institution) -> str:
    return institution.slug.upper()[:16]


def institution_for_ae(called_ae: str) -> Institution | None:
    wanted = called_ae.strip().upper()
    for institution in Institution.objects.exclude(schema_name="public").only("slug", "schema_name"):
        if gateway_ae_title(institution) == wanted:
            found: Institution = institution
            return found
    return None


def inbox_case() -> Case:
    """The institution's DICOM inbox (made once): studies no case number claimed."""
    case = Case.objects.filter(number=INBOX_NUMBER).first()
    if case is not None:
        return case
    owner = User.objects.filter(is_institution_admin=True).order_by("pk").first()
    assert owner is not None, "an institution has an administrator"
    case, _ = Case.objects.get_or_create(
        number=INBOX_NUMBER,
        defaults={
            "owner": owner,
            "status": Case.Status.SUBMITTED,
            "submitted_at": timezone.now(),
            "patient_name": "DICOM inbox",
            "question": "Studies received by DICOM (C-STORE) without a case number. Move them to their case.",
        },
    )
    return case


def gateway_store(*, called_ae: str, accession: str, data: bytes) -> tuple[int, int | None]:
    """Store one received instance (Part 10 bytes) as an upload; (status, upload id)."""
    institution = institution_for_ae(called_ae)
    if institution is None:
        return UNKNOWN_AE, None
    with schema_context(institution.schema_name):
        case = None
        if accession:
            case = cases_for_integrations().filter(number=accession[:32]).first()
        if case is None:
            case = inbox_case()
        public_id = uuid.uuid4()
        key = f"uploads/{case.public_id}/{public_id}"
        tenant_storage().save(key, io.BytesIO(data), len(data))
        with transaction.atomic():
            upload = Upload.objects.create(
                public_id=public_id,
                case=case,
                owner=case.owner,
                kind=Upload.Kind.IMAGING,
                status=Upload.Status.RECEIVED,
                relative_path=f"C-STORE/{public_id.hex[:8]}",
                length=len(data),
                offset=len(data),
                storage_key=key,
                metadata={"source": "c-store"},
            )
            upload_ingest_enqueue(upload=upload)
    return 0x0000, upload.pk


def store_handler(event: Any) -> int:
    """pynetdicom's EVT_C_STORE handler: the instance is stored before success is answered."""
    try:
        data = event.encoded_dataset()
        ds = event.dataset
        accession = str(ds.get("AccessionNumber", "") or "")
        status, _ = gateway_store(
            called_ae=str(event.assoc.requestor.primitive.called_ae_title), accession=accession, data=data
        )
    except Exception:  # never a crash on the association; the sender will retry
        return OUT_OF_RESOURCES
    return status
