"""URLs of an institution's domain (its schema): patient portal and staff workspace."""

from django.urls import include, path

from config.health import healthz

urlpatterns = [
    # Before intake.urls (mounted at the root) so no pattern there can shadow the tus endpoint.
    path("intake/tus/", include("intake.tus.urls")),
    path("", include("intake.urls")),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("brand/", include("branding.urls")),
    path("files/", include("storage.urls")),
    # The workspace (/workspace/...) and the patient's opinion page (/opinions/...).
    path("", include("review.urls")),
    path("dicomweb/", include("review.dicomweb.urls")),
    path("workspace/viewer/", include("review.viewer.urls")),
]
