from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "imaging"
    verbose_name = "Imaging"

    def ready(self) -> None:
        from imaging.pacs.sends import OUTBOX_KIND, pacs_send_outbox_deliver, pacs_send_outbox_retry
        from outbox.deliverers import register

        register(OUTBOX_KIND, pacs_send_outbox_deliver, on_retry=pacs_send_outbox_retry)
