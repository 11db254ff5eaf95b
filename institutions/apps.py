from django.apps import AppConfig


class InstitutionsConfig(AppConfig):
    """An institution's life on the platform: sign-up wizard, go-live, team invitations, the
    administrator's settings pages and the operators' console (no models of its own: it works on
    tenants', branding's and accounts' rows)."""

    name = "institutions"
    verbose_name = "Institutions"
