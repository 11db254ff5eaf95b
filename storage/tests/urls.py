"""The storage URLs mounted where the tenant URLconf mounts them, for tests that reverse them."""

from django.urls import include, path

urlpatterns = [path("files/", include("storage.urls"))]
