"""URLs of an institution's domain (its schema): patient portal and staff workspace."""

from django.urls import include, path

from branding import views as branding_views
from institutions import views as institution_views

urlpatterns = [
    # Before intake.urls (mounted at the root) so no pattern there can shadow the tus endpoint.
    path("intake/tus/", include("intake.tus.urls")),
    path("", include("intake.urls")),
    path("accounts/", include("allauth.urls")),
    path("brand/", include("branding.urls")),
    # Website embed (a button script and an embeddable portal page), and the admin's settings.
    path("embed.js", branding_views.embed_script, name="embed_script"),
    path("embed/", branding_views.embed_portal, name="embed_portal"),
    path("embed/probe", branding_views.embed_probe, name="embed_probe"),
    path("settings/", include("institutions.settings_urls")),
    path("invitations/<str:token>/", institution_views.invitation_accept_view, name="invitation_accept"),
    path("files/", include("storage.urls")),
    # The workspace (/workspace/...) and the patient's opinion page (/opinions/...).
    path("", include("review.urls")),
    path("dicomweb/", include("imaging.dicomweb.urls")),
    path("workspace/viewer/", include("imaging.viewer.urls")),
    path("workspace/deidentified/", include("imaging.deid.urls")),
    path("workspace/pacs/", include("imaging.pacs.urls")),
    path("fhir/", include("review.fhir_urls")),
    path("payments/", include("payments.urls")),
]
