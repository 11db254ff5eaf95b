"""What patients read, in their language: refresh the catalogues, and check them.

    python -m config.translations update   # makemessages (Python, templates, and the wizard's
                                           # JavaScript) for every language, then compilemessages
    python -m config.translations check    # the "translations" check of ./sr check (no database)

The check fails when
- a patient-facing template (PATIENT_TEMPLATES) has words outside a translation tag, or a
  human-read attribute (aria-label, alt, title, placeholder) with words not translated;
- a patient-facing Python module (PATIENT_MODULES) has a sentence constant or a form label or
  help text not marked for translation (gettext_noop, gettext_lazy...);
- a catalogue (locale/<language>/LC_MESSAGES/django.po and djangojs.po) lacks a translation or
  has a fuzzy one, once merged with what the code asks for today (makemessages run in a copy of
  the source, so the check changes nothing);
- a compiled catalogue (.mo, committed so that nothing needs gettext at run time) is older than
  its .po.

The .mo files are committed: running the application needs no gettext tools, only updating
the catalogues (and this check) does.
"""

# long module: the catalogues' update and their check share the lists of patient-facing files
# and the makemessages run; apart, the check could drift from what update extracts.

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = BASE_DIR / "locale"
# Every language but English (the source language) has a catalogue that must be complete.
CATALOGUE_LANGUAGES = ("es",)
DOMAINS = ("django", "djangojs")
# What makemessages skips: installed packages, built bundles, tests (their strings are test data).
MAKEMESSAGES_IGNORE = (".venv", ".data", "node_modules", "static", "tests", "deploy", "docs", "build")

# The templates a patient (or the doctor they share their opinion with) reads: every word in
# them is translated. Staff pages are in English only (accounts.language).
PATIENT_TEMPLATES = (
    "templates/base.html",
    "templates/_language_switch.html",
    "templates/403.html",
    "templates/404.html",
    "templates/500.html",
    "templates/503.html",
    "templates/account/**/*",
    "intake/templates/intake/**/*",
    "branding/templates/branding/legal_text.html",
    "branding/templates/branding/embed_portal.html",
    "tenants/templates/tenants/pending.html",
    "tenants/templates/tenants/suspended.html",
    "branding/templates/branding/email/base.html",
    "payments/templates/payments/checkout.html",
    "payments/templates/payments/price_notice.html",
    "payments/templates/payments/email/*",
    "review/templates/review/patient_opinion.html",
    "review/templates/review/_share_panel.html",
    "review/templates/review/share_created.html",
    "review/templates/review/share_sent.html",
    "review/templates/review/shared_*.html",
    "review/templates/review/case_withdraw.html",
    "review/templates/review/case_delete.html",
    "review/templates/review/email/follow_up_answered.*",
    "review/templates/review/email/opinion_addendum.*",
    "review/templates/review/_addenda_list.html",
    "review/templates/review/_pdf_versions.html",
    "review/templates/review/email/opinion_share_*",
    # The image viewer: the patient opens it on their own images (staff read it in English).
    "imaging/templates/imaging/viewer/viewer.html",
    "imaging/templates/imaging/viewer/page.html",
)
# The Python modules whose sentences patients read (forms, messages, statuses, emails).
PATIENT_MODULES = (
    "intake/forms.py",
    "intake/signup.py",
    "intake/selectors.py",
    "intake/views.py",
    "intake/file_views.py",
    "intake/contact_email.py",
    "intake/contact_views.py",
    "intake/drafts.py",
    "intake/services.py",
    "intake/notifications.py",
    "imaging/ingest/messages.py",
    "intake/tus/messages.py",
    "payments/notifications.py",
    "review/notifications.py",
    "review/views/patient.py",
    "review/pdf_key_images.py",
    "review/views/sharing.py",
    "review/share_emails.py",
)
HUMAN_ATTRIBUTES = ("aria-label", "alt", "title", "placeholder")
TRANSLATION_CALLS = {"gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext", "_"}
FORM_TEXT_KEYWORDS = {"label", "help_text"}
# Words: two letters or more. Numbers, punctuation, arrows and "·" need no translation, nor do
# names (the platform's).
WORD = re.compile(r"[^\W\d_]{2,}")
NAMES = re.compile(r"\b(SecondRead|SR)\b")
# Template blocks whose text is not read by anyone (CSS classes).
UNREAD_BLOCKS = {"body_class"}
UPDATE = "python -m config.translations update"
VALUE = "\x00"  # where a {{ value }} stood in the text: it is not a word


def _manage(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore::RuntimeWarning", "manage.py", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )


def _makemessages_args() -> list[str]:
    args = ["makemessages", "--no-obsolete", "--add-location", "file"]
    for language in CATALOGUE_LANGUAGES:
        args += ["-l", language]
    for pattern in MAKEMESSAGES_IGNORE:
        args += ["--ignore", pattern]
    return args


def catalogues_update(root: Path = BASE_DIR) -> list[str]:
    """Run makemessages for both domains in ``root``; problems as text (empty: it worked)."""
    problems = []
    for domain in DOMAINS:
        extra = ["-d", domain] + (["-e", "js"] if domain == "djangojs" else ["-e", "html,txt,py"])
        result = _manage(*_makemessages_args(), *extra, cwd=root)
        if result.returncode != 0:
            problems.append(f"makemessages -d {domain} failed:\n{result.stdout}{result.stderr}")
    return problems


def catalogues_compile(root: Path = BASE_DIR) -> list[str]:
    result = _manage("compilemessages", "--ignore", ".venv", "--ignore", "node_modules", cwd=root)
    return [] if result.returncode == 0 else [f"compilemessages failed:\n{result.stdout}{result.stderr}"]


def po_entries(text: str) -> Iterator[tuple[set[str], str, list[str]]]:
    """(flags, msgid, msgstrs) of each entry of a .po file (obsolete ones left out)."""
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid") for line in lines):
            continue
        flags: set[str] = set()
        fields: dict[str, str] = {}
        current = ""
        for line in lines:
            if line.startswith("#,"):
                flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                fields[current] += ast.literal_eval(line)
            else:
                key, _, value = line.partition(" ")
                current = key
                fields[current] = ast.literal_eval(value)
        msgid = fields.get("msgid", "")
        if msgid:
            yield flags, msgid, [value for key, value in fields.items() if key.startswith("msgstr")]


def catalogue_problems(po_path: Path, label: str) -> list[str]:
    """Entries of ``po_path`` with no translation, or a fuzzy one."""
    if not po_path.exists():
        return [f"{label}: missing"]
    problems = []
    for flags, msgid, msgstrs in po_entries(po_path.read_text(encoding="utf-8")):
        if "fuzzy" in flags:
            problems.append(f"{label}: fuzzy: {msgid!r}")
        elif not msgstrs or not all(msgstrs):
            problems.append(f"{label}: not translated: {msgid!r}")
    return problems


def merged_catalogue_problems() -> list[str]:
    """makemessages in a copy of the source: what the code asks for today, against what the
    committed catalogues translate."""
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sr-translations-") as temporary:
        copy = Path(temporary) / "src"
        shutil.copytree(
            BASE_DIR,
            copy,
            ignore=shutil.ignore_patterns(*MAKEMESSAGES_IGNORE, ".git", "__pycache__", "*.mo"),
            symlinks=True,
        )
        problems += catalogues_update(copy)
        for language in CATALOGUE_LANGUAGES:
            for domain in DOMAINS:
                relative = Path("locale") / language / "LC_MESSAGES" / f"{domain}.po"
                problems += catalogue_problems(copy / relative, str(relative))
    return problems


def compiled_catalogue_problems() -> list[str]:
    """Each committed .mo holds exactly what its .po says."""
    problems = []
    for language in CATALOGUE_LANGUAGES:
        for domain in DOMAINS:
            po = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
            mo = po.with_suffix(".mo")
            if not po.exists():
                continue
            if not mo.exists():
                problems.append(f"{mo.relative_to(BASE_DIR)}: missing ({UPDATE})")
                continue
            with tempfile.TemporaryDirectory() as temporary:
                fresh = Path(temporary) / "fresh.mo"
                subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(po)], check=True)
                if _catalog(fresh) != _catalog(mo):
                    problems.append(f"{mo.relative_to(BASE_DIR)}: older than its .po ({UPDATE})")
    return problems


def _catalog(path: Path) -> dict[object, str]:
    with path.open("rb") as handle:
        catalog: dict[object, str] = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
        return {key: value for key, value in catalog.items() if key != ""}


def patient_template_paths(root: Path = BASE_DIR) -> list[Path]:
    found: set[Path] = set()
    for pattern in PATIENT_TEMPLATES:
        found.update(path for path in root.glob(pattern) if path.is_file())
    return sorted(found)


def _text_outside_tags(text: str) -> Iterator[str]:
    """Words a reader sees in a piece of template text: outside markup, comments, <style> and
    <script>, plus the human-read attributes of tags."""
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    for tag in re.finditer(r"<[^>]*>", text):
        for attribute in HUMAN_ATTRIBUTES:
            yield from re.findall(rf'\s{attribute}="([^"]*)"', tag.group(0))
    yield re.sub(r"<[^>]*>", " ", text)


def untranslated_template_text(path: Path) -> list[str]:
    """Words in ``path`` outside {% translate %} / {% blocktranslate %} (line: text)."""
    from django.template.base import Lexer, TokenType

    source = path.read_text(encoding="utf-8")
    found = []
    inside_blocktranslate = False
    inside_comment = False
    inside_raw = False  # <style> or <script>: not read
    unread_block = False
    pending = ""  # text of a tag split by template tags ("<a href="{% url %}">")
    pending_line: int | None = 0
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents else ""
            if name in ("blocktranslate", "blocktrans"):
                inside_blocktranslate = True
            elif name in ("endblocktranslate", "endblocktrans"):
                inside_blocktranslate = False
            elif name == "comment":
                inside_comment = True
            elif name == "endcomment":
                inside_comment = False
            elif name == "block":
                unread_block = token.contents.split()[1:2] == [next(iter(UNREAD_BLOCKS))]
            elif name == "endblock":
                unread_block = False
            continue
        if token.token_type == TokenType.VAR:
            # A string shown as is: {{ x|default:"None" }}, {{ n|pluralize:"y,ies" }}.
            for literal in re.findall(
                r'\|(?:default|default_if_none|pluralize|yesno):"([^"]*)"', token.contents
            ):
                if WORD.search(NAMES.sub("", literal)):
                    found.append(f"{path}:{token.lineno}: {{{{ {token.contents} }}}}")
            if not pending:
                pending_line = token.lineno
            pending += VALUE
            continue
        if token.token_type != TokenType.TEXT or inside_blocktranslate or inside_comment or unread_block:
            continue
        text = token.contents
        if inside_raw:
            closed = re.search(r"</(style|script)>", text, re.I)
            if not closed:
                continue
            inside_raw, text = False, text[closed.end() :]
        text = re.sub(r"<(style|script)\b.*?</\1>", " ", text, flags=re.S | re.I)
        opened = re.search(r"<(style|script)\b", text, re.I)
        if opened:
            inside_raw, text = True, text[: opened.start()]
        if not pending:
            pending_line = token.lineno
        pending += text
        # Keep text whose tag is still open ("<p title=") for the next token.
        if pending.rfind("<") > pending.rfind(">"):
            continue
        for words in _text_outside_tags(pending):
            words = " ".join(words.replace(VALUE, " ").split())
            if WORD.search(NAMES.sub("", words)):
                found.append(f"{path}:{pending_line}: {words[:80]}")
        pending = ""
    return found


def untranslated_templates(root: Path = BASE_DIR) -> list[str]:
    found = []
    for path in patient_template_paths(root):
        found += [line.replace(str(root) + "/", "") for line in untranslated_template_text(path)]
    return found


def _is_sentence(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and " " in node.value.strip()
        and bool(WORD.search(node.value))
    )


def untranslated_python(path: Path) -> list[str]:
    """Sentence constants (UPPER_CASE = "...") and form labels/help texts not marked for
    translation in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and all(isinstance(target, ast.Name) and target.id.isupper() for target in node.targets)
            and _is_sentence(node.value)
        ):
            found.append(f"{path}:{node.lineno}: a sentence not marked for translation")
    for call in ast.walk(tree):
        if isinstance(call, ast.Call):
            for keyword in call.keywords:
                if keyword.arg in FORM_TEXT_KEYWORDS and _is_sentence(keyword.value):
                    found.append(f"{path}:{keyword.value.lineno}: {keyword.arg} not marked for translation")
    return found


def untranslated_modules(root: Path = BASE_DIR) -> list[str]:
    found = []
    for relative in PATIENT_MODULES:
        path = root / relative
        if path.exists():
            found += [line.replace(str(root) + "/", "") for line in untranslated_python(path)]
    return found


def check() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django.setup()
    unmarked = untranslated_templates() + untranslated_modules()
    sections = {
        "Words patients read that are not marked for translation (wrap them in {% translate %} / "
        "{% blocktranslate %}, gettext_noop or gettext_lazy)": unmarked,
        f"Catalogue entries without a translation (run `{UPDATE}`, translate the empty or fuzzy "
        "entries of the .po files, and run it again)": merged_catalogue_problems(),
        "Compiled catalogues": compiled_catalogue_problems(),
    }
    failed = False
    for title, problems in sections.items():
        if problems:
            failed = True
            print(f"{title}:")
            for problem in problems:
                print(f"  {problem}")
    if not failed:
        print(f"translations complete ({', '.join(CATALOGUE_LANGUAGES)})")
    return 1 if failed else 0


def update() -> int:
    problems = catalogues_update() + catalogues_compile()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command not in ("check", "update"):
        print("usage: python -m config.translations [check|update]", file=sys.stderr)
        sys.exit(2)
    sys.exit(check() if command == "check" else update())
