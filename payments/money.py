"""Amounts as people read them. Amounts are integers in minor units (cents), as Stripe takes
them; every currency offered has two decimals.

The amount is written the way the reader's language writes money (Babel's CLDR data): a
patient reading Spanish sees ``1.234,50 €``, one reading English ``€1,234.50``. The language is
the active one: the page's in a request, the recipient's inside an email
(``branding.emails.branded_email_send`` activates it), English on staff pages."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation
from django.utils.functional import lazy


def money_format(*, amount: int, currency: str, language: str | None = None) -> str:
    """``10000, "usd"`` → ``"$100.00"`` in English, ``"100,00 US$"`` in Spanish."""
    locale = translation.to_locale(language or translation.get_language() or settings.LANGUAGE_CODE)
    return format_currency(Decimal(amount) / 100, currency.upper(), locale=locale)


def money_lazy(*, amount: int, currency: str) -> str:
    """``money_format`` written when it is shown (in an email: in the recipient's language)."""
    return _money_lazy(amount, currency)


_money_lazy = lazy(lambda amount, currency: money_format(amount=amount, currency=currency), str)
