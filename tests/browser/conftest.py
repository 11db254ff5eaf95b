"""Fixtures shared by the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.models import User
from intake.models import Case
from payments.models import Payment
from storage.tenant import tenant_storage


@pytest.fixture(scope="module")
def committed_case(django_db_setup: None, django_db_blocker: Any) -> Iterator[Case]:
    """A draft case of patient@neuro. Module-scoped: made before the test's own transaction
    opens, so it is committed and the live server sees it; removed with its files after."""
    with django_db_blocker.unblock(), schema_context("neuro"):
        case = Case.objects.create(
            owner=User.objects.get(email="patient@neuro.example.com"), consented_at=timezone.now()
        )
    yield case
    with django_db_blocker.unblock(), schema_context("neuro"):
        Payment.objects.filter(case=case).delete()  # the price quote the wizard made
        tenant_storage().delete_prefix(f"uploads/{case.public_id}")
        tenant_storage().delete_prefix(f"dicom/{case.public_id}")
        Case.objects.filter(pk=case.pk).delete()
