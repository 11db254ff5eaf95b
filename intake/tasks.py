from __future__ import annotations

from config.celery_app import app


@app.task(name="intake.case_status_email")
def case_status_email(case_id: int, status: str, note: str = "") -> None:
    """Email the patient about a state their case reached (runs in the case's schema)."""
    from intake.notifications import case_status_email_send

    case_status_email_send(case_id=case_id, status=status, note=note)


@app.task(name="intake.upload_ingest")
def upload_ingest(upload_id: int) -> None:
    """Ingest a complete upload, and with it a batch of its case's other waiting imaging uploads
    (a folder drop). Claims them first: the tasks of uploads already claimed, and a second
    delivery of this one, do nothing."""
    from intake.ingest.pipeline import upload_ingest_run

    upload_ingest_run(upload_id=upload_id)


@app.task(name="intake.series_preview")
def series_preview(series_id: int) -> None:
    """Draw a series' preview if it has none yet or grew since the last one (idempotent)."""
    from intake.ingest.preview import series_preview_ensure

    series_preview_ensure(series_id=series_id)
