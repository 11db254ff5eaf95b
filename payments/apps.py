from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Prices, waiver codes and payments of one institution (its schema)."""

    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        # Intake sits below payments and asks, through this registration, whether a case
        # still waits for its fee (the wizard's payment step, submission), and has it fix a case's
        # price when the patient starts it.
        from intake.fees import case_payment_rule_register, case_price_freeze_register
        from payments.services import case_payment_required, payment_quote_ensure

        case_payment_rule_register(case_payment_required)
        case_price_freeze_register(payment_quote_ensure)

        # A draft being deleted (by its owner, or abandoned): its frozen price goes with it.
        from intake.drafts import draft_deleting
        from payments.services import draft_payment_discard

        draft_deleting.connect(draft_payment_discard, dispatch_uid="payments.draft_payment_discard")

        # Refunds are outbox messages, made at Stripe by the outbox's worker after commit.
        from outbox.deliverers import register
        from payments.services import STRIPE_REFUND, refund_deliver

        register(STRIPE_REFUND, refund_deliver)
