"""The translations check (./sr check translations): words patients read outside the catalogue,
and catalogue entries without a translation, are found."""

from __future__ import annotations

from pathlib import Path

from config import translations


def _template(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "page.html"
    path.write_text(text)
    return translations.untranslated_template_text(path)


def test_it_finds_words_outside_translation_tags(tmp_path: Path) -> None:
    found = _template(
        tmp_path, '{% load i18n %}<p class="lead">Send my request</p>\n<p>{% translate "Fine" %}</p>'
    )
    assert found == [f"{tmp_path}/page.html:1: Send my request"]


def test_it_finds_words_in_attributes_people_read(tmp_path: Path) -> None:
    found = _template(tmp_path, '<nav aria-label="Progress of your request" class="wizard"></nav>')
    assert found == [f"{tmp_path}/page.html:1: Progress of your request"]
    assert _template(tmp_path, '<nav aria-label="{% translate \'Progress\' %}" class="x y"></nav>') == []


def test_it_finds_english_words_in_filters(tmp_path: Path) -> None:
    found = _template(tmp_path, '{{ n }} image{{ n|pluralize }}, stud{{ n|pluralize:"y,ies" }}')
    # The English words between the values, and the pluralize's English endings.
    assert [line.split(": ", 1)[1] for line in found] == ["image", ", stud", '{{ n|pluralize:"y,ies" }}']


def test_it_accepts_translated_text_values_names_markup_and_styles(tmp_path: Path) -> None:
    source = (
        "{% load i18n %}{% block body_class %}wizard-page{% endblock %}"
        "<style>:root{--brand:{{ colour }};}</style><a href=\"{% url 'x' %}\">{{ name }}</a> · "
        "{% blocktranslate with name=n %}Hello {{ name }}{% endblocktranslate %} SecondRead "
        "{% comment %}Not read by anyone{% endcomment %}{# nor this #}"
    )
    assert _template(tmp_path, source) == []


def test_it_finds_sentences_and_labels_not_marked_in_python(tmp_path: Path) -> None:
    path = tmp_path / "forms.py"
    path.write_text(
        "from django import forms\n"
        "from django.utils.translation import gettext_lazy as _, gettext_noop\n"
        'SHOWN = "Please enter your name."\n'
        'MARKED = gettext_noop("Please enter your email.")\n'
        'KEY = "intake/email/case"\n'
        "class F(forms.Form):\n"
        '    name = forms.CharField(label="Your name", help_text=_("As written."))\n'
    )
    found = translations.untranslated_python(path)
    assert found == [
        f"{path}:3: a sentence not marked for translation",
        f"{path}:7: label not marked for translation",
    ]


def test_it_finds_missing_and_fuzzy_translations(tmp_path: Path) -> None:
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr "Language: es\\n"\n\n'
        'msgid "Done"\nmsgstr "Hecho"\n\n'
        'msgid "Send"\nmsgstr ""\n\n'
        '#, fuzzy, python-format\nmsgid "Case %(n)s"\nmsgstr "Caso %(n)s"\n\n'
        'msgid "%(n)s file"\nmsgid_plural "%(n)s files"\nmsgstr[0] "%(n)s archivo"\nmsgstr[1] ""\n\n'
        '#~ msgid "Old"\n#~ msgstr ""\n'
    )
    assert translations.catalogue_problems(po, "es") == [
        "es: not translated: 'Send'",
        "es: fuzzy: 'Case %(n)s'",
        "es: not translated: '%(n)s file'",
    ]


def test_every_patient_facing_word_is_marked_today() -> None:
    assert translations.untranslated_templates() == []
    assert translations.untranslated_modules() == []
    assert translations.compiled_catalogue_problems() == []
