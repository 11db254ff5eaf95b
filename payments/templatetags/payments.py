"""``{% load payments %}{% price_notice %}``: the institution's fee, for the portal to show
before a patient starts (nothing when it charges nothing)."""

from __future__ import annotations

from typing import Any

from django import template

from payments.selectors import payment_methods_get, price_quote_current

register = template.Library()


@register.inclusion_tag("payments/price_notice.html", takes_context=True)
def price_notice(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    institution = getattr(request, "tenant", None)
    if institution is None or institution.schema_name == "public":
        return {"quote": None}
    return {
        "quote": price_quote_current(institution=institution),
        "methods": payment_methods_get(institution=institution),
        "institution": institution,
    }
