from __future__ import annotations

from celery import shared_task

# Task names keep the app they were born in (tenants.*): queued messages and the beat schedule
# carry them, so a rename would strand work queued before a deploy.


@shared_task(name="tenants.institution_go_live", ignore_result=True, soft_time_limit=300, time_limit=330)
def institution_go_live(onboarding_id: int) -> bool:
    """Provision a new institution (queued from the public schema; see the service)."""
    from institutions.provisioning import institution_go_live as go_live

    return go_live(onboarding_id=onboarding_id)


@shared_task(
    name="tenants.institution_usage_refresh", ignore_result=True, soft_time_limit=600, time_limit=660
)
def institution_usage_refresh(after: str = "") -> None:
    """Measure the next batch of institutions for the operator console, then queue the rest
    (periodic, on the housekeeping queue)."""
    from institutions.usage import institution_usage_refresh as refresh

    last = refresh(after=after)
    if last is not None:
        institution_usage_refresh.delay(last)


@shared_task(
    name="tenants.onboardings_discard_abandoned", ignore_result=True, soft_time_limit=600, time_limit=660
)
def onboardings_discard_abandoned() -> int:
    """Delete applications untouched for 30 days that never went live (periodic)."""
    from institutions.onboarding import onboarding_discard_abandoned

    return onboarding_discard_abandoned()


@shared_task(name="tenants.custom_domains_recheck", ignore_result=True, soft_time_limit=1800, time_limit=1860)
def custom_domains_recheck() -> int:
    """Check every routed custom domain's DNS again; switch off those that left us (daily)."""
    from institutions.domain_checks import custom_domains_recheck_all

    return custom_domains_recheck_all()


@shared_task(name="tenants.onboardings_recover", ignore_result=True, soft_time_limit=300, time_limit=330)
def onboardings_recover() -> None:
    """Resume or roll back go-lives nobody is working on any more; drop orphan schemas
    (periodic, on the housekeeping queue; see institutions.recovery)."""
    from institutions.recovery import onboardings_recover as recover

    recover()
