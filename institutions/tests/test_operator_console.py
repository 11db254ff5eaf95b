"""The operator console is for platform operators on the platform's domain only."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction
from django.test import Client

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from institutions.services import ACTION_NOT_ALLOWED, REASON_REQUIRED, institution_operator_action
from institutions.usage import institution_usage_refresh_all
from tenants.models import Institution, OperatorAction
from tests.staff import staff_force_login, staff_sign_in

OPERATOR = "operator@secondread.example.com"


def test_it_lists_institutions_for_an_operator(platform_client: Client) -> None:
    staff_force_login(platform_client, OPERATOR)
    page = platform_client.get("/operators/").content.decode()
    assert "Northfield Neurological Institute" in page
    assert "Lakeside Cancer Center" in page


def test_it_sends_a_logged_out_visitor_to_sign_in(platform_client: Client) -> None:
    response = platform_client.get("/operators/")
    assert response.status_code == 302


def test_it_does_not_exist_on_an_institutions_domain(neuro_client: Client) -> None:
    neuro_client.post("/accounts/login/", {"login": "admin@neuro.example.com", "password": DEMO_PASSWORD})
    assert neuro_client.get("/operators/").status_code == 404


def test_it_needs_the_operators_second_factor(platform_client: Client) -> None:
    platform_client.post(
        "/accounts/login/", {"login": "operator@secondread.example.com", "password": DEMO_PASSWORD}
    )
    assert "_auth_user_id" not in platform_client.session  # the password alone is not enough
    response = platform_client.get("/operators/")
    assert response.status_code == 302 and "/operators/" not in response["Location"].split("?")[0]


def test_it_sends_an_operator_without_an_authenticator_to_set_one_up(db: None) -> None:
    from allauth.mfa.models import Authenticator

    from accounts.models import User

    operator = User.objects.create_user(
        "new.operator@secondread.example.com", DEMO_PASSWORD, is_operator=True
    )
    assert not Authenticator.objects.filter(user=operator).exists()
    client = Client(HTTP_HOST="localhost")
    client.force_login(operator)
    response = client.get("/operators/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/totp/activate")


def _operator() -> Client:
    client = Client(HTTP_HOST="localhost")
    staff_force_login(client, OPERATOR)
    return client


def test_it_asks_an_operator_for_the_second_factor(platform_client: Client) -> None:
    response = platform_client.post("/accounts/login/", {"login": OPERATOR, "password": DEMO_PASSWORD})
    # The password alone does not sign in: the authenticator code comes first.
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/authenticate/")
    assert platform_client.get("/operators/")["Location"].startswith("/accounts/login/")
    operator = Client(HTTP_HOST="localhost")
    staff_sign_in(operator, OPERATOR)
    assert operator.get("/operators/").status_code == 200


def test_it_makes_an_operator_without_an_authenticator_set_one_up(platform_client: Client) -> None:
    from allauth.account.models import EmailAddress
    from django_tenants.utils import schema_context

    from accounts.models import User

    with schema_context("public"):
        user = User.objects.create_user(
            "new-operator@secondread.example.com", DEMO_PASSWORD, is_operator=True
        )
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    platform_client.post("/accounts/login/", {"login": user.email, "password": DEMO_PASSWORD})
    response = platform_client.get("/operators/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/totp/activate")


def test_it_shows_figures_but_never_patient_data(neuro: Institution) -> None:
    from django_tenants.utils import schema_context

    from accounts.models import User
    from intake.models import Case

    with schema_context(neuro.schema_name):
        patient = User.objects.get(email="patient@neuro.example.com")
        Case.objects.create(owner=patient, patient_name="Zebedee Quartermain", question="Is it benign?")
    institution_usage_refresh_all()
    page = _operator().get("/operators/").content.decode()
    assert "Zebedee" not in page and "benign" not in page and "patient@neuro" not in page
    row = page.split('data-testid="institution-neuro"')[1].split("</tr>")[0]
    cases = row.split('data-testid="cases">')[1].split("<")[0]
    assert int(cases) >= 1
    assert "not measured" not in row  # storage was measured (the logo at least)


def test_it_suspends_and_reactivates_with_a_reason_recorded(neuro: Institution) -> None:
    operator = _operator()
    url = f"/operators/institutions/{neuro.pk}/action"
    page = operator.post(url, {"action": "suspend", "reason": ""}, follow=True).content.decode()
    assert REASON_REQUIRED in page
    operator.post(url, {"action": "suspend", "reason": "Unpaid invoices"})
    neuro.refresh_from_db()
    assert neuro.status == Institution.Status.SUSPENDED
    patient_page = Client(HTTP_HOST="neuro.localhost").get("/")
    assert patient_page.status_code == 503 and "temporarily unavailable" in patient_page.content.decode()
    page = operator.post(url, {"action": "approve", "reason": "x"}, follow=True).content.decode()
    assert ACTION_NOT_ALLOWED in page
    operator.post(url, {"action": "reactivate", "reason": "Paid"})
    neuro.refresh_from_db()
    assert neuro.status == Institution.Status.ACTIVE
    actions = list(OperatorAction.objects.filter(institution=neuro).order_by("created"))
    assert [(a.action, a.reason, a.operator_email) for a in actions] == [
        ("suspend", "Unpaid invoices", "operator@secondread.example.com"),
        ("reactivate", "Paid", "operator@secondread.example.com"),
    ]
    assert "Unpaid invoices" in operator.get("/operators/").content.decode()


def test_it_keeps_operator_actions_append_only(neuro: Institution) -> None:
    institution_operator_action(
        institution_id=neuro.pk,
        operator_email="operator@secondread.example.com",
        action="suspend",
        reason="Test",
    )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        OperatorAction.objects.update(reason="rewritten")


def test_it_refuses_actions_from_non_operators(neuro: Institution, platform_client: Client) -> None:
    url = f"/operators/institutions/{neuro.pk}/action"
    response = platform_client.post(url, {"action": "suspend", "reason": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    admin = Client(HTTP_HOST="neuro.localhost")
    admin.post("/accounts/login/", {"login": "admin@neuro.example.com", "password": DEMO_PASSWORD})
    assert admin.post(url, {"action": "suspend", "reason": "x"}).status_code == 404
    neuro.refresh_from_db()
    assert neuro.status == Institution.Status.ACTIVE
    assert not OperatorAction.objects.exists()


def test_it_reads_no_institution_schema_and_a_fixed_number_of_queries_per_page(neuro: Institution) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    institution_usage_refresh_all()
    operator = _operator()
    operator.get("/operators/")  # the session's first page does one-off work (sign-in records)
    with CaptureQueriesContext(connection) as few:
        assert operator.get("/operators/").status_code == 200
    Institution.objects.bulk_create(
        Institution(
            name=f"Clinic {n:03}", slug=f"clinic-{n:03}", schema_name=f"inst_clinic_{n:03}", status="draft"
        )
        for n in range(120)
    )
    with CaptureQueriesContext(connection) as many:
        page = operator.get("/operators/").content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    for query in many.captured_queries:
        assert "intake_" not in query["sql"] and '"neuro"' not in query["sql"], query["sql"]
    assert "122 institutions, page 1 of 3" in page
    assert page.count('data-testid="institution-') == 50
    last = operator.get("/operators/?page=3").content.decode()
    assert "Clinic 119" in last and "page 3 of 3" in last


def test_it_finds_an_institution_by_name_or_domain(neuro: Institution) -> None:
    operator = _operator()
    page = operator.get("/operators/?q=neuro.localhost").content.decode()
    assert "Northfield Neurological Institute" in page and "Lakeside Cancer Center" not in page
    page = operator.get("/operators/?q=lakeside").content.decode()
    assert "Lakeside Cancer Center" in page and "1 institution." in page


def test_the_usage_sweep_counts_each_institutions_cases_in_its_own_schema(neuro: Institution) -> None:
    from django_tenants.utils import schema_context

    from accounts.models import User
    from intake.models import Case
    from tenants.models import InstitutionUsage

    institution_usage_refresh_all()
    before = InstitutionUsage.objects.get(institution=neuro).case_count
    cancer_before = InstitutionUsage.objects.get(institution__slug="cancer").case_count
    with schema_context(neuro.schema_name):
        Case.objects.create(owner=User.objects.get(email="patient@neuro.example.com"))
    institution_usage_refresh_all()
    assert InstitutionUsage.objects.get(institution=neuro).case_count == before + 1
    assert InstitutionUsage.objects.get(institution__slug="cancer").case_count == cancer_before
