"""The institution administrator's settings (included at ``settings/`` by config.urls_tenant)."""

from django.urls import path

from institutions import delivery_views, fhir_views, integration_views, pacs_views, sso_views
from institutions import settings_views as views

app_name = "settings"
urlpatterns = [
    path("", views.settings_home, name="home"),
    path("look/", views.settings_look, name="look"),
    path("texts/", views.settings_texts, name="texts"),
    path("texts/languages", views.settings_languages, name="languages"),
    path("texts/<slug:language>/", views.settings_texts_language, name="texts_language"),
    path("service/", views.settings_service, name="service"),
    path("team/", views.settings_team, name="team"),
    path("website/", views.settings_website, name="website"),
    path("domains/", views.settings_domains, name="domains"),
    path("integrations/", integration_views.integrations, name="integrations"),
    path("emails/", delivery_views.deliveries, name="deliveries"),
    path("emails/<int:message_id>/retry", delivery_views.delivery_retry, name="delivery_retry"),
    path(
        "integrations/<uuid:credential_id>/revoke",
        integration_views.integration_revoke,
        name="integration_revoke",
    ),
    path("sign-in/", sso_views.sso_settings, name="sso"),
    path("sign-in/remove", sso_views.sso_remove, name="sso_remove"),
    path("fhir/", fhir_views.fhir_settings, name="fhir"),
    path("fhir/remove", fhir_views.fhir_remove, name="fhir_remove"),
    path("fhir/check", fhir_views.fhir_check, name="fhir_check"),
    path("pacs/", pacs_views.pacs_destinations, name="pacs"),
    path("pacs/<uuid:destination_id>/echo", pacs_views.pacs_destination_echo, name="pacs_echo"),
    path("pacs/<uuid:destination_id>/remove", pacs_views.pacs_destination_remove, name="pacs_remove"),
]
