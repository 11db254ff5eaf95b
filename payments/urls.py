from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("", views.payments_overview, name="overview"),
    path("export.csv", views.payments_export, name="export"),
    path("case/<uuid:case_id>/", views.checkout, name="checkout"),
    path("case/<uuid:case_id>/pay/", views.checkout_pay, name="checkout_pay"),
    path("case/<uuid:case_id>/return/", views.checkout_return, name="checkout_return"),
    path("case/<uuid:case_id>/cancelled/", views.checkout_cancelled, name="checkout_cancelled"),
    path("case/<uuid:case_id>/waiver/", views.waiver_use, name="waiver_use"),
    path("settings/", views.payment_settings, name="settings"),
    path("settings/stripe/connect/", views.stripe_connect, name="stripe_connect"),
    path("settings/stripe/refresh/", views.stripe_refresh, name="stripe_refresh"),
    path("settings/stripe/return/", views.stripe_return, name="stripe_return"),
    path("settings/stripe/sync/", views.stripe_sync, name="stripe_sync"),
    path("settings/stripe/disconnect/", views.stripe_disconnect, name="stripe_disconnect"),
    path("settings/waiver-codes/", views.waiver_code_add, name="waiver_add"),
    path("settings/waiver-codes/<int:code_id>/withdraw/", views.waiver_code_withdraw, name="waiver_withdraw"),
]
