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

from django.conf import settings
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
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
    return date_format(timezone.localtime(moment, zone), "DATE_FORMAT")


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

    rows = [[cell(_("Date")), cell(_("Modality")), cell(_("Description")), cell(_("Accession"))]]
    for study in studies:
        rows.append(
            [
                cell(date_format(study.study_date, "DATE_FORMAT") if study.study_date else _("unknown")),
                cell(study.modalities.replace(",", ", ")),
                cell(study.description or _("(no description)")),
                cell(study.accession_number or _("none")),
            ]
        )
    return Table(
        rows,
        colWidths=[40 * mm, 22 * mm, None, 32 * mm],  # room for "14 de noviembre de 2025"
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
    return _("Electronically signed by <b>%(signer)s</b>%(role)s of %(institution)s on %(date)s.") % {
        "signer": signer,
        "role": role,
        "institution": escape(institution.name),
        "date": on,
    }


def opinion_pdf_render(
    *,
    opinion: Opinion,
    case: Case,
    institution: Institution,
    addenda: Sequence[OpinionAddendum] = (),
) -> bytes:
    """The opinion as signed, followed by ``addenda`` (oldest first), each with its signature,
    in the language of the patient who asked for it (``User.language``; the reviewer's own
    words stay as written).

    Precondition: ``opinion`` is signed (``signed_at``, ``signer_name`` set)."""
    with translation.override(case.owner.language or settings.LANGUAGE_CODE):
        return _render(opinion=opinion, case=case, institution=institution, addenda=addenda)


def _render(
    *, opinion: Opinion, case: Case, institution: Institution, addenda: Sequence[OpinionAddendum]
) -> bytes:
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
    born = date_format(case.patient_birth_date, "DATE_FORMAT") if case.patient_birth_date else _("not given")
    meta = Table(
        [
            [_("Second opinion"), _("Case %(number)s") % {"number": case.number or ""}],
            [_("Patient"), Paragraph(escape(case.patient_name or _("not given")), body)],
            [_("Date of birth"), born],
            [_("Signed"), _("%(date)s (%(zone)s time)") % {"date": signed_on, "zone": zone.key}],
            *(
                [_("Addendum %(number)s") % {"number": n}, _local_date(a.signed_at, zone)]
                for n, a in enumerate(addenda, start=1)
            ),
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
        story.append(Paragraph(_("In short, for the patient"), heading))
        story.extend(_paragraphs(opinion.patient_summary, body))
    studies = _studies_table(case, body, accent)
    story.append(Paragraph(_("Studies reviewed"), heading))
    story.append(studies if studies is not None else Paragraph(_("No images were sent; reports only."), body))
    sections = [
        (_("The question"), opinion.question_restated),
        (_("Findings"), opinion.findings),
        (_("Impression"), opinion.impression),
        (_("Agreement with the original diagnosis"), str(opinion.get_agreement_display())),
        (_("Recommendation"), str(opinion.get_recommendation_display())),
        (_("Comments"), opinion.comments),
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
        story.append(
            Paragraph(_("Addendum %(number)s (%(date)s)") % {"number": n, "date": added_on}, heading)
        )
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
            _(
                "This second opinion is based on the images and reports provided. Discuss it with your "
                "physician before making decisions about your care. Fingerprint: %(fingerprint)s"
            )
            % {"fingerprint": opinion.content_sha256[:16]},
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
        title=_("Second opinion %(number)s") % {"number": case.number or ""},
        author=institution.name,
    )
    document.build(story)
    return out.getvalue()
