from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Outbox"

    def ready(self) -> None:
        # The email deliverer is this app's own (every email is one kind of message).
        from outbox import mail  # noqa: F401
