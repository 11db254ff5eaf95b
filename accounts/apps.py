from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Sign-ins, second-factor and role changes go to the audit log (the bottom layer).
        from accounts.audit_events import audit_receivers_connect

        audit_receivers_connect()
