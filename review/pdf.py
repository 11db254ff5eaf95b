"""The signed opinion as a branded PDF (reportlab): the institution's logo and colours, the case
number, the opinion's sections, the reviewer's name, credentials and signing date."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from branding.selectors import brand_for_institution
from intake.models import Case
from review.models import Opinion
from review.pdf_key_images import key_image_flowables
from storage.tenant import tenant_storage
from tenants.models import Institution


def _paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    # Free text from the reviewer: escaped, so "<" in a finding cannot become markup.
    return [
        Paragraph(escape(part).replace("\n", "<br/>"), style) for part in text.split("\n\n") if part.strip()
    ]


def opinion_pdf_render(*, opinion: Opinion, case: Case, institution: Institution) -> bytes:
    """Precondition: ``opinion`` is signed (``signed_at``, ``signer_name`` set)."""
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
            data = tenant_storage(institution.schema_name).read_bytes(brand.logo_key)
            logo = Image(io.BytesIO(data), 18 * mm, 18 * mm)
        except OSError:
            logo = ""  # a missing logo must not stop a signed opinion from being issued
    header = Table(
        [[logo, Paragraph(escape(institution.name), title)]],
        colWidths=[22 * mm, None],
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, 0), 2, accent),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        ),
    )
    signed_on = opinion.signed_at.strftime("%d %B %Y")
    meta = Table(
        [
            ["Second opinion", f"Case {case.number or ''}"],
            ["Signed", signed_on],
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
    signer = escape(opinion.signer_name)
    if opinion.signer_credentials:
        signer += ", " + escape(opinion.signer_credentials)
    story.append(Paragraph(f"Electronically signed by <b>{signer}</b> on {signed_on}.", body))
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
