"""The only way institution-written HTML (consent, terms, privacy texts) reaches a page."""

from __future__ import annotations

import re

import nh3
from django.utils.html import linebreaks

# Enough for legal texts: paragraphs, headings, lists, emphasis and links. No style, no
# images, no forms, no scripts; links get rel="noopener noreferrer nofollow".
ALLOWED_TAGS = {"p", "br", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "b", "i", "a", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES = {"https", "http", "mailto", "tel"}

# Markup that is active (runs code, loads things, restyles the page), as opposed to harmless
# formatting we merely drop. Text containing it is refused with a message instead of silently
# changed, so the admin knows their text was not kept as written.
_ACTIVE_CONTENT = re.compile(
    r"<\s*/?\s*(script|style|iframe|frame|object|embed|svg|math|form|input|button|link|meta|base|img)\b"
    r"|\son[a-z]+\s*="
    r"|\bstyle\s*="
    r"|(javascript|vbscript|data)\s*:",
    re.IGNORECASE,
)


def institution_html_clean(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def institution_html_has_active_content(html: str) -> bool:
    return bool(_ACTIVE_CONTENT.search(html))


_HAS_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z]")


def institution_text_html(text: str) -> str:
    """An institution's text as safe HTML: simple HTML is sanitised; plain text (no tags)
    becomes paragraphs, its blank lines kept and every character escaped."""
    if _HAS_MARKUP.search(text):
        return institution_html_clean(text)
    return linebreaks(text.strip(), autoescape=True) if text.strip() else ""
