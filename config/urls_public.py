"""URLs of the platform's own domain (public schema): the platform site and the operators."""

from django.urls import include, path

from config.health import healthz
from tenants import views as tenant_views

urlpatterns = [
    path("", tenant_views.platform_home, name="platform_home"),
    path("healthz", healthz, name="healthz"),
    path("operators/", tenant_views.operator_console, name="operator_console"),
    path("accounts/", include("allauth.urls")),
]
