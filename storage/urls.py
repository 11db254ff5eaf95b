"""Included by the tenant URLconf under ``files/``: ``path("files/", include("storage.urls"))``."""

from django.urls import path

from storage import views

app_name = "storage"

urlpatterns = [
    path("signed/<str:token>", views.signed_download, name="signed_download"),
]
