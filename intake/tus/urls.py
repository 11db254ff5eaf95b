"""Mounted at ``intake/tus/`` on an institution's domain (config/urls_tenant.py)."""

from django.urls import path

from intake.tus import views

app_name = "tus"
urlpatterns = [
    path("", views.tus_uploads, name="uploads"),
    path("<uuid:public_id>", views.tus_upload, name="upload"),
]
