"""Names and subdomains that could pass for another institution's are refused.

A patient trusts the name and the address they see. ``skeleton`` reduces a text to what a
reader sees: Unicode compatibility forms folded (NFKC), accents dropped, case folded, letters
of other scripts that look Latin (Cyrillic "а", Greek "ο") and digits that look like letters
("0" → "o", "1" → "l") mapped to them, "rn" read as "m", and everything that is not a letter
dropped (spaces, hyphens, punctuation). Two names are look-alikes when their skeletons are
equal, a small edit apart, or one is most of the other (a prefix of 8+ characters, such as
"lakeside-cancer" for "Lakeside Cancer Center"). This follows Unicode TR39's skeleton idea with
a table of the common confusables rather than the full data set.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.text import slugify

NAME_HAS_MARKUP = "Use letters, digits, spaces and simple punctuation only in the name."
NAME_LOOKS_LIKE_ANOTHER = "This name is too close to an existing institution's. Please choose another."
SUBDOMAIN_LOOKS_LIKE_ANOTHER = (
    "This address is too close to an existing institution's. Please choose another."
)

_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
        "ɡ": "g", "ո": "n", "ս": "u", "ԛ": "q", "ԝ": "w",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w",
        # Digits and Latin letters read as others
        "0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
        "i": "l", "|": "l", "!": "l",
    }
)  # fmt: skip
_MARKUP = re.compile(r"[<>{}\[\]\\`\"]|&[#a-zA-Z0-9]+;|[\x00-\x1f\x7f]|https?://|//")
_PREFIX_MIN = 8
_MAX_EDITS = 2


def skeleton(text: str) -> str:
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    mapped = plain.translate(_HOMOGLYPHS).replace("rn", "m").replace("vv", "w")
    return "".join(c for c in mapped if c.isalpha())


def _edits(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, stopping early once above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def looks_alike(a: str, b: str) -> bool:
    sa, sb = skeleton(a), skeleton(b)
    if not sa or not sb:
        return False
    if sa == sb or _edits(sa, sb, _MAX_EDITS) <= _MAX_EDITS:
        return True
    shorter, longer = sorted((sa, sb), key=len)
    return len(shorter) >= _PREFIX_MIN and longer.startswith(shorter)


def name_has_markup(name: str) -> bool:
    return bool(_MARKUP.search(name))


def lookalike_of(*, text: str, exclude_pk: int | None = None) -> str | None:
    """The existing institution (name or subdomain) ``text`` could pass for, or None."""
    from tenants.models import Institution

    for pk, name, slug in Institution.objects.exclude(schema_name="public").values_list("pk", "name", "slug"):
        if pk == exclude_pk:
            continue
        if looks_alike(text, name) or looks_alike(text, slug) or looks_alike(slugify(text), slug):
            return str(name)
    return None
