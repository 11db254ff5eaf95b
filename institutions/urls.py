"""Platform-domain pages of the onboarding wizard (included at ``start/`` by config.urls_public)."""

from django.urls import path

from institutions import views

app_name = "onboarding"
urlpatterns = [
    path("", views.onboarding_start, name="start"),
    path("confirm/<str:token>/", views.onboarding_verify, name="verify"),
    path("sign-in/", views.onboarding_sign_in, name="sign_in"),
    path("sign-out/", views.onboarding_sign_out, name="sign_out"),
    path("continue/", views.onboarding_resume, name="resume"),
    path("subdomain-check", views.onboarding_subdomain_check, name="subdomain_check"),
    path("progress", views.onboarding_progress, name="progress"),
    path("logo.png", views.onboarding_logo, name="logo"),
    path("step/fee/stripe/connect/", views.onboarding_stripe_connect, name="stripe_connect"),
    path("step/fee/stripe/return/", views.onboarding_stripe_return, name="stripe_return"),
    path("step/<slug:step>/", views.onboarding_step, name="step"),
]
