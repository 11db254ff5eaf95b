"""Each institution's time zone: the one its people live in.

Datetimes are stored in UTC. What people read is in the institution's zone: pages (the request
activates it, ``tenants.middleware.InstitutionTimeZoneMiddleware``), Celery tasks (activated for
the task's institution, ``config.celery_app``), emails (rendered in it, ``branding.emails``),
the signed opinion PDF, due dates and business days, dashboard periods and CSV exports.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils import timezone

if TYPE_CHECKING:
    from tenants.models import Institution

DEFAULT_TIME_ZONE = "UTC"
TIME_ZONE_UNKNOWN = "Choose a time zone from the list (for example Europe/Paris or America/New_York)."


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """The IANA zones this machine knows (the system's tzdata, else the tzdata package)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def time_zone_validate(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(TIME_ZONE_UNKNOWN, code="time_zone_unknown")


def institution_zone(institution: Institution | object) -> zoneinfo.ZoneInfo:
    """The institution's zone; UTC for the platform (public schema) or an unknown name (a zone
    removed from tzdata since it was chosen: better UTC than an error page)."""
    name = getattr(institution, "time_zone", "") or DEFAULT_TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)


def institution_time_zone_activate(tenant: Institution | object | None) -> None:
    """Make the zone of ``tenant`` (a request's or a task's, possibly a stand-in that has only
    a schema name) the current one for this thread; the platform or None: back to UTC."""
    if tenant is None or getattr(tenant, "schema_name", "public") == "public":
        timezone.deactivate()
    else:
        timezone.activate(institution_zone(tenant))


def institution_local(moment: dt.datetime, institution: Institution) -> dt.datetime:
    """``moment`` (aware) as the institution's wall clock shows it."""
    return timezone.localtime(moment, institution_zone(institution))
