"""The staff workspace under /workspace/ and the patient's opinion page under /opinions/.

Mounted at the site root by config/urls_tenant.py so both live in the ``review`` namespace
(the intake portal links to ``review:patient_opinion``)."""

from django.urls import path

from review.views import (
    case,
    notifications,
    opinion,
    opinion_templates,
    patient,
    peer_review,
    queue,
    reports,
    roster,
    sharing,
    withdrawal,
)

app_name = "review"
urlpatterns = [
    path("workspace/", queue.queue, name="home"),
    path("workspace/", queue.queue, name="queue"),
    path("workspace/search", queue.queue_search, name="queue_search"),
    path("workspace/roster/", roster.roster, name="roster"),
    path("workspace/roster/<int:user_id>", roster.roster_member, name="roster_member"),
    path("workspace/roster/<int:user_id>/deactivate", roster.staff_deactivate, name="staff_deactivate"),
    path("workspace/roster/<int:user_id>/reactivate", roster.staff_reactivate, name="staff_reactivate"),
    path("workspace/roster/<int:user_id>/mfa-reset", roster.staff_mfa_reset, name="staff_mfa_reset"),
    path("workspace/settings", roster.review_settings, name="settings"),
    path("workspace/templates/", opinion_templates.opinion_template_list, name="opinion_templates"),
    path(
        "workspace/templates/<int:template_id>",
        opinion_templates.opinion_template_edit,
        name="opinion_template_edit",
    ),
    path(
        "workspace/templates/<int:template_id>/delete",
        opinion_templates.opinion_template_delete,
        name="opinion_template_delete",
    ),
    path("workspace/notifications/", notifications.notifications, name="notifications"),
    path(
        "workspace/notifications/email",
        notifications.notification_preferences,
        name="notification_preferences",
    ),
    path("workspace/dashboard/", reports.dashboard, name="dashboard"),
    path("workspace/dashboard.csv", reports.dashboard_csv, name="dashboard_csv"),
    path("workspace/audit/", reports.audit_log, name="audit"),
    path("workspace/audit.csv", reports.audit_csv, name="audit_csv"),
    path("workspace/cases/<uuid:public_id>/", case.case_workspace, name="case"),
    path("workspace/cases/<uuid:public_id>/assign", case.case_assign, name="case_assign"),
    path("workspace/cases/<uuid:public_id>/start-review", case.case_review_start, name="case_review_start"),
    path("workspace/cases/<uuid:public_id>/notes", case.case_note, name="case_note"),
    path("workspace/cases/<uuid:public_id>/request-info", case.case_request_info, name="case_request_info"),
    path("workspace/cases/<uuid:public_id>/decline", case.case_decline, name="case_decline"),
    path("workspace/cases/<uuid:public_id>/close", case.case_close, name="case_close"),
    path("workspace/cases/<uuid:public_id>/outcomes", case.case_outcome, name="case_outcome"),
    path(
        "workspace/cases/<uuid:public_id>/reports/<uuid:report_id>/match",
        case.report_match,
        name="report_match",
    ),
    path(
        "workspace/cases/<uuid:public_id>/reports/<uuid:report_id>/file",
        case.report_file,
        name="report_file",
    ),
    path(
        "workspace/cases/<uuid:public_id>/reports/<uuid:report_id>/original",
        case.report_original,
        name="report_original",
    ),
    path(
        "workspace/cases/<uuid:public_id>/uploads/<uuid:upload_id>/original",
        case.upload_original,
        name="upload_original",
    ),
    path(
        "workspace/cases/<uuid:public_id>/studies/<int:study_id>/exclude",
        case.study_exclude,
        name="study_exclude",
    ),
    path(
        "workspace/cases/<uuid:public_id>/studies/<int:study_id>/include",
        case.study_include,
        name="study_include",
    ),
    path(
        "workspace/cases/<uuid:public_id>/series/<int:series_id>/preview",
        case.series_preview,
        name="series_preview",
    ),
    path("workspace/cases/<uuid:public_id>/opinion/draft", opinion.opinion_draft, name="opinion_draft"),
    path(
        "workspace/cases/<uuid:public_id>/opinion/template",
        opinion_templates.opinion_template_apply,
        name="opinion_template_apply",
    ),
    path("workspace/cases/<uuid:public_id>/opinion/sign", opinion.opinion_sign, name="opinion_sign"),
    path("workspace/cases/<uuid:public_id>/opinion/release", opinion.opinion_release, name="opinion_release"),
    path("workspace/cases/<uuid:public_id>/opinion/pdf", opinion.opinion_pdf, name="opinion_pdf"),
    path(
        "workspace/cases/<uuid:public_id>/opinion/pdf/v<int:version>",
        opinion.opinion_pdf,
        name="opinion_pdf_version",
    ),
    path(
        "workspace/cases/<uuid:public_id>/opinion/addenda", opinion.opinion_addendum, name="opinion_addendum"
    ),
    path(
        "workspace/cases/<uuid:public_id>/peer-review/request",
        peer_review.peer_review_request,
        name="peer_review_request",
    ),
    path(
        "workspace/cases/<uuid:public_id>/peer-review/answer",
        peer_review.peer_review_answer,
        name="peer_review_answer",
    ),
    path(
        "workspace/cases/<uuid:public_id>/peer-review/<uuid:review_id>/override",
        peer_review.peer_review_override,
        name="peer_review_override",
    ),
    path(
        "workspace/cases/<uuid:public_id>/follow-ups/<int:question_id>/answer",
        opinion.follow_up_answer,
        name="follow_up_answer",
    ),
    path("opinions/<uuid:public_id>/", patient.patient_opinion, name="patient_opinion"),
    path("opinions/<uuid:public_id>/pdf", patient.patient_opinion_pdf, name="patient_opinion_pdf"),
    path(
        "opinions/<uuid:public_id>/pdf/v<int:version>",
        patient.patient_opinion_pdf,
        name="patient_opinion_pdf_version",
    ),
    path("opinions/<uuid:public_id>/share", sharing.patient_share_create, name="patient_share_create"),
    path("opinions/<uuid:public_id>/share/revoke", sharing.patient_share_revoke, name="patient_share_revoke"),
    path("opinions/<uuid:public_id>/share/email", sharing.patient_share_email, name="patient_share_email"),
    path("shared/<str:token>/", sharing.shared_opinion, name="shared_opinion"),
    path("shared/<str:token>/pdf", sharing.shared_opinion_pdf, name="shared_opinion_pdf"),
    # The patient's own request: delete it unsent, or withdraw it once sent.
    path("cases/<uuid:public_id>/delete/", withdrawal.case_delete_view, name="case_delete"),
    path("cases/<uuid:public_id>/withdraw/", withdrawal.case_withdraw_view, name="case_withdraw"),
]
