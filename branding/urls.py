from django.urls import path

from branding import views

app_name = "branding"
urlpatterns = [
    path("logo.png", views.logo, name="logo"),
    path("favicon.png", views.favicon, name="favicon"),
    path("texts/<slug:kind>/", views.legal_text, name="legal_text"),
]
