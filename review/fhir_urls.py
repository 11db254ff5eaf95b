from django.urls import path

from review import fhir_views

app_name = "fhir"
urlpatterns = [
    path("DiagnosticReport", fhir_views.report_search, name="report_search"),
    path("DiagnosticReport/<str:resource_id>", fhir_views.report_read, name="report"),
    path("Bundle/<str:resource_id>", fhir_views.bundle_read, name="bundle"),
]
