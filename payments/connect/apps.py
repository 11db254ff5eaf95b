from django.apps import AppConfig


class PaymentsConnectConfig(AppConfig):
    """Which Stripe account belongs to which institution, and the webhook events already
    processed. Public schema only: the platform's webhook endpoint must find the institution
    from the connected account id before it knows which schema to use."""

    name = "payments.connect"
    label = "payments_connect"
    verbose_name = "Stripe Connect"
