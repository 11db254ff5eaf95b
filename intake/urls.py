from django.urls import path

from intake import contact_views, file_views, views

app_name = "intake"
urlpatterns = [
    path("", views.portal_home, name="home"),
    path("terms/", views.terms, name="terms"),
    path(
        "contact/confirm/<str:token>/",
        contact_views.patient_email_confirm_view,
        name="patient_email_confirm",
    ),
    path("privacy/", views.privacy, name="privacy"),
    path("cases/", views.case_list, name="case_list"),
    path("cases/new/", views.case_new, name="case_new"),
    path("cases/<uuid:public_id>/", views.case_status, name="case_status"),
    path("cases/<uuid:public_id>/patient/", views.case_patient, name="case_patient"),
    path("cases/<uuid:public_id>/question/", views.case_question, name="case_question"),
    path("cases/<uuid:public_id>/images/", views.case_images, name="case_images"),
    path("cases/<uuid:public_id>/images/status.json", file_views.case_files_status, name="case_files_status"),
    path("cases/<uuid:public_id>/images.zip", file_views.case_images_download, name="case_images_download"),
    path("cases/<uuid:public_id>/studies/", file_views.case_studies, name="case_studies"),
    path("cases/<uuid:public_id>/reports/kinds/", file_views.case_report_kinds, name="case_report_kinds"),
    path("cases/<uuid:public_id>/continue-link/", views.case_continue_link, name="case_continue_link"),
    path("cases/<uuid:public_id>/reports/", views.case_reports, name="case_reports"),
    path("cases/<uuid:public_id>/summary/", views.case_summary, name="case_summary"),
    path("cases/<uuid:public_id>/payment/", views.case_payment, name="case_payment"),
    path("cases/<uuid:public_id>/submitted/", views.case_submitted, name="case_submitted"),
]
