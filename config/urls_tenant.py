"""URLs of an institution's domain (its schema): patient portal and staff workspace."""

from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.i18n import JavaScriptCatalog, set_language

from accounts.sso import provider as sso_provider
from branding import views as branding_views
from institutions import views as institution_views

urlpatterns = [
    # Before intake.urls (mounted at the root) so no pattern there can shadow the tus endpoint.
    path("intake/tus/", include("intake.tus.urls")),
    path("", include("intake.urls")),
    # The language switch (POST: remembered in a cookie) and the wizard's JavaScript messages in
    # the page's language (djangojs catalogue), Django's own views. Pages ask for the catalogue
    # with their language in the query (?l=es), so a browser's cached copy is never another
    # language's.
    path("i18n/setlang/", set_language, name="set_language"),
    path(
        "i18n/messages.js",
        cache_control(max_age=3600, private=True)(JavaScriptCatalog.as_view()),
        name="javascript_catalog",
    ),
    # Staff single sign-on: allauth's OpenID Connect URLs, served by our provider's views (they
    # check the ID token's signature and nonce), so before allauth's own at the same paths.
    path("accounts/oidc/<str:provider_id>/login/", sso_provider.login, name="openid_connect_login"),
    path(
        "accounts/oidc/<str:provider_id>/login/callback/",
        sso_provider.callback,
        name="openid_connect_callback",
    ),
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

# A failure on our side: 503 with Retry-After when a service we need is unreachable, else 500.
handler500 = "config.errors.server_error"
