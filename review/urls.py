"""The staff workspace under /workspace/ and the patient's opinion page under /opinions/.

Mounted at the site root by config/urls_tenant.py so both live in the ``review`` namespace
(the intake portal links to ``review:patient_opinion``)."""

from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("workspace/", views.queue, name="home"),
    path("workspace/", views.queue, name="queue"),
    path("workspace/search", views.queue_search, name="queue_search"),
    path("workspace/roster/", views.roster, name="roster"),
    path("workspace/roster/<int:user_id>", views.roster_member, name="roster_member"),
    path("workspace/settings", views.review_settings, name="settings"),
    path("workspace/dashboard/", views.dashboard, name="dashboard"),
    path("workspace/dashboard.csv", views.dashboard_csv, name="dashboard_csv"),
    path("workspace/audit/", views.audit_log, name="audit"),
    path("workspace/audit.csv", views.audit_csv, name="audit_csv"),
    path("workspace/cases/<uuid:public_id>/", views.case_workspace, name="case"),
    path("workspace/cases/<uuid:public_id>/assign", views.case_assign, name="case_assign"),
    path("workspace/cases/<uuid:public_id>/notes", views.case_note, name="case_note"),
    path("workspace/cases/<uuid:public_id>/request-info", views.case_request_info, name="case_request_info"),
    path("workspace/cases/<uuid:public_id>/decline", views.case_decline, name="case_decline"),
    path("workspace/cases/<uuid:public_id>/close", views.case_close, name="case_close"),
    path("workspace/cases/<uuid:public_id>/outcomes", views.case_outcome, name="case_outcome"),
    path(
        "workspace/cases/<uuid:public_id>/reports/<uuid:report_id>/match",
        views.report_match,
        name="report_match",
    ),
    path(
        "workspace/cases/<uuid:public_id>/reports/<uuid:report_id>/file",
        views.report_file,
        name="report_file",
    ),
    path(
        "workspace/cases/<uuid:public_id>/series/<int:series_id>/preview",
        views.series_preview,
        name="series_preview",
    ),
    path("workspace/cases/<uuid:public_id>/opinion/draft", views.opinion_draft, name="opinion_draft"),
    path("workspace/cases/<uuid:public_id>/opinion/sign", views.opinion_sign, name="opinion_sign"),
    path("workspace/cases/<uuid:public_id>/opinion/release", views.opinion_release, name="opinion_release"),
    path("workspace/cases/<uuid:public_id>/opinion/pdf", views.opinion_pdf, name="opinion_pdf"),
    path(
        "workspace/cases/<uuid:public_id>/follow-ups/<int:question_id>/answer",
        views.follow_up_answer,
        name="follow_up_answer",
    ),
    path("opinions/<uuid:public_id>/", views.patient_opinion, name="patient_opinion"),
    path("opinions/<uuid:public_id>/pdf", views.patient_opinion_pdf, name="patient_opinion_pdf"),
]
