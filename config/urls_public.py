"""URLs of the platform's own domain (public schema): the platform site and the operators."""

from django.urls import include, path

from institutions import views as institution_views
from payments import views as payment_views
from tenants import views as tenant_views

urlpatterns = [
    path("", institution_views.platform_home, name="platform_home"),
    path("operators/", institution_views.operator_console, name="operator_console"),
    path(
        "operators/institutions/<int:institution_id>/action",
        institution_views.operator_institution_action,
        name="operator_institution_action",
    ),
    path("operators/usage/refresh", institution_views.operator_usage_refresh, name="operator_usage_refresh"),
    path("start/", include("institutions.urls")),
    # Asked by the reverse proxy (Caddy on_demand_tls) before it gets a certificate.
    path("tls/ask", tenant_views.tls_ask, name="tls_ask"),
    path("accounts/", include("allauth.urls")),
    # Stripe Connect events of every institution's account (routed by the event's account).
    path("stripe/webhook", payment_views.stripe_webhook, name="stripe_webhook"),
]

# A failure on our side: 503 with Retry-After when a service we need is unreachable, else 500.
handler500 = "config.errors.server_error"
