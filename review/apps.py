from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review workspace"

    def ready(self) -> None:
        # The imaging layer (DICOMweb, the viewer) sits below review and asks, through this
        # registration, which cases a user may see: the same rule as every review page.
        from imaging.cases import case_visibility_register
        from review.access import cases_for_integrations, cases_visible_to

        case_visibility_register(cases_visible_to, cases_for_integrations=cases_for_integrations)

        from intake.workflow import case_status_changed
        from review.staff_notifications import case_status_changed_notify

        case_status_changed.connect(case_status_changed_notify, dispatch_uid="review.staff_notifications")

        from outbox.deliverers import register
        from review.fhir_push import OUTBOX_KIND, fhir_push_deliver

        register(OUTBOX_KIND, fhir_push_deliver)
