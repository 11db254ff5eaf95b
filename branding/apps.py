from django.apps import AppConfig


class BrandingConfig(AppConfig):
    name = "branding"
    verbose_name = "Branding"

    def ready(self) -> None:
        from tenants.middleware import institution_join_register

        # Every page of an institution's site shows its brand: read with the domain.
        institution_join_register("brand")
