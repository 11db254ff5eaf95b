"""The signed opinion as a branded PDF (reportlab), written so a doctor elsewhere can use it:
the institution's logo (its aspect ratio kept), name and address, the patient's name and birth
date, the studies reviewed, the plain-language summary for the patient first, the opinion's
sections, and the reviewer's name, credentials, role and signing date."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from branding.selectors import brand_for_institution
from imaging.models import Study
from intake.models import Case
from review.models import Opinion, OpinionAddendum
from review.pdf_key_images import key_image_flowables
from storage.tenant import tenant_storage
from tenants.models import Institution
from tenants.timezones import institution_zone


def _local_date(moment: dt.datetime, zone: ZoneInfo) -> str:
    return timezone.localtime(moment, zone).strftime("%d %B %Y")


def _paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    # Free text from the reviewer: escaped, so "<" in a finding cannot become markup.
    return [
        Paragraph(escape(part).replace("\n", "<br/>"), style) for part in text.split("\n\n") if part.strip()
    ]


LOGO_HEIGHT = 18 * mm
LOGO_MAX_WIDTH = 50 * mm


def _logo(data: bytes) -> Image:
    """The logo LOGO_HEIGHT high (narrower if it would pass LOGO_MAX_WIDTH), never squashed."""
    width_px, height_px = ImageReader(io.BytesIO(data)).getSize()
    height = LOGO_HEIGHT
    width = height * width_px / height_px
    if width > LOGO_MAX_WIDTH:
        width, height = LOGO_MAX_WIDTH, LOGO_MAX_WIDTH * height_px / width_px
    return Image(io.BytesIO(data), width, height)


def _studies_table(case: Case, body: ParagraphStyle, line: colors.Color) -> Table | None:
    # The studies the patient sent: those left out of the case (not theirs, not wanted) are not
    # listed as reviewed.
    studies = list(Study.objects.included().filter(case=case).order_by("study_date", "id"))
    if not studies:
        return None

    def cell(text: str) -> Paragraph:
        return Paragraph(escape(text), body)

    rows = [[cell("Date"), cell("Modality"), cell("Description"), cell("Accession")]]
    for study in studies:
        rows.append(
            [
                cell(study.study_date.strftime("%d %b %Y") if study.study_date else "unknown"),
                cell(study.modalities.replace(",", ", ")),
                cell(study.description or "(no description)"),
                cell(study.accession_number or "none"),
            ]
        )
    return Table(
        rows,
        colWidths=[28 * mm, 24 * mm, None, 35 * mm],
        repeatRows=1,
        style=TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.75, line),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        ),
    )


def _signed_line(*, name: str, credentials: str, title: str, institution: Institution, on: str) -> str:
    signer = escape(name)
    if credentials:
        signer += ", " + escape(credentials)
    role = f" ({escape(title)})" if title else ""
    return f"Electronically signed by <b>{signer}</b>{role} of {escape(institution.name)} on {on}."


def opinion_pdf_render(
    *,
    opinion: Opinion,
    case: Case,
    institution: Institution,
    addenda: Sequence[OpinionAddendum] = (),
) -> bytes:
    """The opinion as signed, followed by ``addenda`` (oldest first), each with its signature.

    Precondition: ``opinion`` is signed (``signed_at``, ``signer_name`` set)."""
    assert opinion.signed_at is not None
    brand = brand_for_institution(institution=institution)
    primary = colors.HexColor(brand.primary_colour if brand else "#1f4e79")
    accent = colors.HexColor(brand.accent_colour if brand else "#c75b12")

    styles = getSampleStyleSheet()
    title = ParagraphStyle("title", parent=styles["Title"], textColor=primary, alignment=0, fontSize=18)
    heading = ParagraphStyle("heading", parent=styles["Heading3"], textColor=primary, spaceBefore=8)
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=10.5, leading=14)
    small = ParagraphStyle("small", parent=body, fontSize=8.5, textColor=colors.HexColor("#555555"))

    logo: Image | str = ""
    if brand and brand.logo_key:
        try:
            logo = _logo(tenant_storage(institution.schema_name).read_bytes(brand.logo_key))
        except (OSError, ValueError, ZeroDivisionError):
            logo = ""  # a missing logo must not stop a signed opinion from being issued
    address = brand.postal_address.strip() if brand else ""
    contact = " · ".join(part for part in (brand.support_email, brand.support_phone) if part) if brand else ""
    name_cell: list[Flowable] = [Paragraph(escape(institution.name), title)]
    if address:
        name_cell.append(Paragraph(escape(address).replace("\n", "<br/>"), small))
    if contact:
        name_cell.append(Paragraph(escape(contact), small))
    header = Table(
        [[logo, name_cell]],
        colWidths=[(logo.drawWidth + 4 * mm) if isinstance(logo, Image) else 1 * mm, None],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, 0), 2, accent),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        ),
    )
    # Dates as the institution's wall clock showed them when signed (stored in UTC: a 23:30 UTC
    # signature is the next day in Tokyo and the same day in New York).
    zone = institution_zone(institution)
    signed_on = _local_date(opinion.signed_at, zone)
    born = case.patient_birth_date.strftime("%d %B %Y") if case.patient_birth_date else "not given"
    meta = Table(
        [
            ["Second opinion", f"Case {case.number or ''}"],
            ["Patient", Paragraph(escape(case.patient_name or "not given"), body)],
            ["Date of birth", born],
            ["Signed", f"{signed_on} ({zone.key} time)"],
            *([[f"Addendum {n}", _local_date(a.signed_at, zone)] for n, a in enumerate(addenda, start=1)]),
        ],
        colWidths=[45 * mm, None],
        style=TableStyle(
            [
                ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                ("TEXTCOLOR", (0, 0), (0, -1), primary),
                ("FONTSIZE", (0, 0), (-1, -1), 10),
            ]
        ),
    )
    story: list[Flowable] = [header, Spacer(1, 6 * mm), meta, Spacer(1, 4 * mm)]
    if opinion.patient_summary.strip():
        story.append(Paragraph("In short, for the patient", heading))
        story.extend(_paragraphs(opinion.patient_summary, body))
    studies = _studies_table(case, body, accent)
    story.append(Paragraph("Studies reviewed", heading))
    story.append(studies if studies is not None else Paragraph("No images were sent; reports only.", body))
    sections = [
        ("The question", opinion.question_restated),
        ("Findings", opinion.findings),
        ("Impression", opinion.impression),
        ("Agreement with the original diagnosis", opinion.get_agreement_display()),
        ("Recommendation", opinion.get_recommendation_display()),
        ("Comments", opinion.comments),
    ]
    for label, text in sections:
        if text and text.strip():
            story.append(Paragraph(escape(label), heading))
            story.extend(_paragraphs(text, body))
    story.extend(key_image_flowables(case=case, heading=heading, caption=small))
    story.append(Spacer(1, 10 * mm))
    story.append(
        Paragraph(
            _signed_line(
                name=opinion.signer_name,
                credentials=opinion.signer_credentials,
                title=opinion.signer_title,
                institution=institution,
                on=signed_on,
            ),
            body,
        )
    )
    for n, addendum in enumerate(addenda, start=1):
        # Added after signing: the signed text above is unchanged, each addendum signed on its own.
        added_on = _local_date(addendum.signed_at, zone)
        story.append(Paragraph(f"Addendum {n} ({added_on})", heading))
        story.extend(_paragraphs(addendum.text, body))
        story.append(
            Paragraph(
                _signed_line(
                    name=addendum.signer_name,
                    credentials=addendum.signer_credentials,
                    title=addendum.signer_title,
                    institution=institution,
                    on=added_on,
                ),
                body,
            )
        )
    story.append(Spacer(1, 2 * mm))
    story.append(
        Paragraph(
            "This second opinion is based on the images and reports provided. Discuss it with your "
            f"physician before making decisions about your care. Fingerprint: {opinion.content_sha256[:16]}",
            small,
        )
    )

    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Second opinion {case.number or ''}",
        author=institution.name,
    )
    document.build(story)
    return out.getvalue()
