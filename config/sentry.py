"""Optional error reports to Sentry (``SENTRY_DSN``), with patient data removed before sending.

An exception's message may quote what it choked on (a patient's name in a DICOM header, a file
name), a request carries form fields and cookies, and breadcrumbs carry log messages. So an
event keeps only what our JSON logs keep (config.logging): exception types and our own code's
frames without local variables, the URL's path (ids, never names: patient data is never in
URLs), our own log messages; everything else is dropped by ``scrub_event`` before it leaves.
"""

from __future__ import annotations

from typing import Any

from config.logging import _OWN_LOGGERS, SAFE_EXTRA_KEYS

REQUEST_KEYS = ("url", "method")


def _own_logger(name: str | None) -> bool:
    return bool(name) and str(name).split(".")[0] in _OWN_LOGGERS


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    for exception in (event.get("exception") or {}).get("values") or []:
        exception["value"] = ""  # the type stays: ValueError, not what the value was
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    request = event.get("request")
    if isinstance(request, dict):
        url = str(request.get("url", "")).split("?", 1)[0]
        event["request"] = {key: request[key] for key in REQUEST_KEYS if key in request} | {"url": url}
    for key in ("user", "extra", "contexts_extra"):
        event.pop(key, None)
    event["extra"] = {}
    if event.get("logger") and not _own_logger(event.get("logger")):
        logentry = event.get("logentry") or {}
        template = logentry.get("message") if isinstance(logentry, dict) else None
        event["logentry"] = {"message": str(template or ""), "params": []}
        event.pop("message", None)
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):
        breadcrumbs["values"] = [scrub_breadcrumb(crumb) for crumb in breadcrumbs.get("values") or []]
    return event


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    kept: dict[str, Any] = {
        key: crumb[key] for key in ("type", "category", "level", "timestamp") if key in crumb
    }
    if _own_logger(crumb.get("category")) and "message" in crumb:
        kept["message"] = crumb["message"]
    data = crumb.get("data") or {}
    kept["data"] = {key: value for key, value in data.items() if key in SAFE_EXTRA_KEYS}
    return kept


def sentry_init(*, dsn: str, environment: str, release: str, **options: Any) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=0.0,
        **options,
    )
