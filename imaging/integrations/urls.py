from django.urls import path

from imaging.integrations import views

app_name = "integrations"
urlpatterns = [
    path("", views.integrations, name="settings"),
    path("<uuid:credential_id>/revoke", views.integration_revoke, name="revoke"),
]
