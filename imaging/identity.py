"""Are these the declared patient's images? Each study's patient (name, birth date, sex, as the
files write them) compared with the patient declared on the case.

The verdict is stored on the study (``Study.identity_status`` and ``identity_reason``) by
:func:`case_identity_refresh`, which ingest calls when it indexes new studies and intake calls
when the declared patient changes. Readers use the stored fields:

- ``Study.objects.filter(case=case, identity_status=Study.Identity.MISMATCH)``, or
  :func:`case_identity_mismatches` (included studies only, oldest first);
- :func:`study_identity_hint` for the short "J. D., born 1958" a page may show to someone allowed
  to see the case (it is patient data: never in URLs or logs).

``identity_reason`` holds no patient data ("different name and birth date"), so it is safe in
lists, audit details and logs.

Names are compared the way DICOM writes them and people type them: PN order
``Family^Given^Middle^Prefix^Suffix`` (only the first, alphabetic, component group), or
"Family, Given" with a comma; case, accents, punctuation and middle names do not matter; the
family name and the first given name (or its initial) must both be in the declared name.
Anonymised names ("ANONYMOUS", empty, digits only) cannot be compared and count as unknown.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext

from imaging.cases import CaseRow, case_model
from imaging.models import Study

MATCHES = Study.Identity.MATCHES
MISMATCH = Study.Identity.MISMATCH
UNKNOWN = Study.Identity.UNKNOWN

# Names that anonymisers and test equipment write instead of a person's name.
_PLACEHOLDER_NAMES = frozenset(
    {"anonymous", "anonymized", "anonymised", "anon", "unknown", "patient", "test", "none", "na", "noname"}
)
# Titles and suffixes that DICOM puts in the prefix/suffix components and people type anyway.
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sr", "sra", "jr", "ii", "iii", "iv"})
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class DeclaredPatient:
    name: str
    birth_date: datetime.date | None
    sex: str  # "F", "M", "O" (other / prefer not to say) or ""


@dataclass(frozen=True)
class FilesPatient:
    name: str  # DICOM PN as written, e.g. "DOE^JANE^^^"
    birth_date: str  # DICOM DA as written, e.g. "19580312"
    sex: str  # DICOM CS as written: "F", "M", "O" or ""


@dataclass(frozen=True)
class IdentityVerdict:
    status: str  # Study.Identity
    reason: str  # what differs or matched; no patient data


def _fold(text: str) -> str:
    """Lower case without accents: "Álvarez" and "ALVAREZ" fold alike; "ß" to "ss"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _words(text: str) -> list[str]:
    # "O'Brien" is one word, "García-López" two.
    folded = _fold(text).replace("'", "").replace("’", "")
    return [word for word in _WORD.findall(folded) if word not in _HONORIFICS]


@dataclass(frozen=True)
class _Name:
    family: list[str]  # empty when the order is unknown
    given: list[str]  # first given name first, then middle names
    words: list[str]  # every word, whatever its role


def name_parse_dicom(value: str) -> _Name:
    """A DICOM PN (or what a writer put there instead) split into its parts."""
    alphabetic = value.split("=", 1)[0]
    if "^" in alphabetic:
        parts = alphabetic.split("^")
        family, given = _words(parts[0]), _words(" ".join(parts[1:3]))
        return _Name(family=family, given=given, words=family + given)
    return name_parse_typed(alphabetic)


def name_parse_typed(value: str) -> _Name:
    """A name as a person types it: "Family, Given Middle" with a comma, else any order."""
    if "," in value:
        family_text, given_text = value.split(",", 1)
        family, given = _words(family_text), _words(given_text)
        return _Name(family=family, given=given, words=family + given)
    words = _words(value)
    return _Name(family=[], given=[], words=words)


def _is_placeholder(name: _Name) -> bool:
    return not name.words or all(word in _PLACEHOLDER_NAMES for word in name.words)


def _given_in(given: str, words: list[str]) -> bool:
    """The first given name (or its initial) is among ``words`` (or one of them is its initial)."""
    for word in words:
        if word == given:
            return True
        if (len(word) == 1 or len(given) == 1) and word[0] == given[0]:
            return True
    return False


def names_compare(files_name: str, declared_name: str) -> str:
    """MATCHES, MISMATCH or UNKNOWN for a PN from the files and a name the patient typed."""
    files, declared = name_parse_dicom(files_name), name_parse_typed(declared_name)
    if _is_placeholder(files) or not declared.words:
        return UNKNOWN
    declared_words = declared.words
    joined = "".join(declared_words)
    if files.family:
        # Compound and double family names: one of its words is enough ("GARCIA LOPEZ" for a
        # patient who types "María García"), or the whole run without spaces ("MACDONALD").
        family_found = any(word in declared_words for word in files.family) or (
            "".join(files.family) in joined and len("".join(files.family)) > 2
        )
        if not family_found:
            return MISMATCH
        rest = [word for word in declared_words if word not in files.family] or declared_words
        if files.given and not _given_in(files.given[0], rest):
            return MISMATCH
        return MATCHES
    # No roles in the files' name: every one of its words must be in the declared name.
    shared = [word for word in files.words if _given_in(word, declared_words)]
    if len(shared) < len(files.words):
        return MISMATCH
    return MATCHES if len(shared) >= 2 else UNKNOWN


def birth_date_parse(value: str) -> datetime.date | None:
    """A DICOM DA ("19580312"; old writers: "1958.03.12"); None when empty or placeholder."""
    digits = re.sub(r"[^0-9]", "", value or "")
    if len(digits) != 8:
        return None
    try:
        parsed = datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None
    if parsed.year < 1880 or ((parsed.month, parsed.day) == (1, 1) and parsed.year == 1900):
        return None  # 1900-01-01 is what many systems write for "unknown"
    return parsed


def identity_compare(*, files: FilesPatient, declared: DeclaredPatient) -> IdentityVerdict:
    """Compare what the files say with the declared patient. A difference in name, birth date
    or sex is a mismatch; it matches when nothing differs and the name or birth date agree."""
    differs: list[str] = []
    agrees: list[str] = []
    name = names_compare(files.name, declared.name)
    if name == MISMATCH:
        differs.append("name")
    elif name == MATCHES:
        agrees.append("name")
    born = birth_date_parse(files.birth_date)
    if born is not None and declared.birth_date is not None:
        (differs if born != declared.birth_date else agrees).append("birth date")
    sex = (files.sex or "").strip().upper()[:1]
    if sex in ("F", "M") and declared.sex in ("F", "M"):
        (differs if sex != declared.sex else agrees).append("sex")
    if differs:
        return IdentityVerdict(MISMATCH, "different " + _and(differs))
    if "name" in agrees or "birth date" in agrees:
        return IdentityVerdict(MATCHES, "same " + _and(agrees))
    return IdentityVerdict(UNKNOWN, "nothing to compare" if not agrees else "only the sex can be compared")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def case_declared_patient(case: CaseRow) -> DeclaredPatient:
    return DeclaredPatient(
        name=case.patient_name or "", birth_date=case.patient_birth_date, sex=case.patient_sex or ""
    )


def study_identity_verdict(*, study: Study, declared: DeclaredPatient) -> IdentityVerdict:
    files = FilesPatient(
        name=study.patient_name_in_files,
        birth_date=study.patient_birth_date_in_files,
        sex=study.patient_sex_in_files,
    )
    return identity_compare(files=files, declared=declared)


def case_identity_refresh(*, case: CaseRow) -> list[Study]:
    """Compute every study's verdict against the case's declared patient and store those that
    changed; return the studies that do not match (included or not). Safe to run any time, and
    twice: the result depends only on the rows."""
    mismatched: list[Study] = []
    with transaction.atomic():
        # The case row is the lock: ingest and a change of the declared patient take turns, so
        # the last to run sees both the new studies and the new details.
        case = case_model()._default_manager.select_for_update().get(pk=case.pk)
        declared = case_declared_patient(case)
        for study in Study.objects.filter(case=case).order_by("study_date", "id"):
            verdict = study_identity_verdict(study=study, declared=declared)
            if (study.identity_status, study.identity_reason) != (verdict.status, verdict.reason):
                Study.objects.filter(pk=study.pk).update(
                    identity_status=verdict.status, identity_reason=verdict.reason
                )
                study.identity_status, study.identity_reason = verdict.status, verdict.reason
            if verdict.status == MISMATCH:
                mismatched.append(study)
    return mismatched


def case_identity_mismatches(*, case: CaseRow) -> list[Study]:
    """The included studies whose files name someone other than the declared patient."""
    return list(
        Study.objects.included().filter(case=case, identity_status=MISMATCH).order_by("study_date", "id")
    )


def study_identity_hint(study: Study) -> str:
    """Who the files name, briefly: initials in the order the files write them and the year of
    birth ("D. J., born 1958"), or "" when the files name no one. Patient data: show only to
    someone allowed to see the case; never put it in URLs or logs."""
    name = name_parse_dicom(study.patient_name_in_files)
    initials = "" if _is_placeholder(name) else " ".join(f"{word[0].upper()}." for word in name.words[:3])
    born = birth_date_parse(study.patient_birth_date_in_files)
    if initials and born:
        return gettext("%(initials)s, born %(year)s") % {"initials": initials, "year": born.year}
    if born:
        return gettext("someone born %(year)s") % {"year": born.year}
    return initials
