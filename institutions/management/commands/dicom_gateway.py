"""``./sr manage dicom_gateway``: receive studies by DICOM C-STORE (see intake.gateway)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from intake.gateway import store_handler


class Command(BaseCommand):
    help = "Receive DICOM studies by C-STORE into cases (called AE title: the institution's slug)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 (a network service)
        parser.add_argument("--port", type=int, default=settings.DICOM_GATEWAY_PORT)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        ae = AE(ae_title="SECONDREAD")
        ae.require_called_aet = False  # any institution's AE title; checked per instance
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        self.stdout.write(f"DICOM gateway listening on {host}:{port}")
        ae.start_server((host, port), block=True, evt_handlers=[(evt.EVT_C_STORE, store_handler)])
