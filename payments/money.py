"""Amounts as people read them. Amounts are integers in minor units (cents), as Stripe takes
them; every currency offered has two decimals."""

from __future__ import annotations

from decimal import Decimal

CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}


def money_format(*, amount: int, currency: str) -> str:
    """``10000, "usd"`` → ``"$100.00"``; currencies without a symbol get their code after."""
    major = f"{Decimal(amount) / 100:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    return f"{symbol}{major}" if symbol else f"{major} {currency.upper()}"
