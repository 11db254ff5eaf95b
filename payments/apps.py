from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Prices, waiver codes and payments of one institution (its schema)."""

    name = "payments"
    verbose_name = "Payments"
