"""Staff single sign-on in Chromium: the staff sign-in page's button, the hospital's provider
(tests/oidc_double.py, signing real ID tokens), back to SecondRead: the authenticator step when
the provider used one factor, straight in when it asserts MFA (trusted), refused for a patient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django_tenants.utils import schema_context

from accounts.sso.adapter import NOT_STAFF_HERE
from accounts.sso.config import SingleSignOnInput, single_sign_on_remove, single_sign_on_save
from tests.live import committed
from tests.oidc_double import CLIENT_ID, CLIENT_SECRET, IdentityUser, OidcDouble
from tests.staff import MFA_URL, _wait_for_next_code, totp_code

pytestmark = pytest.mark.browser


@pytest.fixture
def neuro_idp(live_platform: Any) -> Iterator[OidcDouble]:
    double = OidcDouble().start()

    def configure() -> None:
        with schema_context("neuro"):
            single_sign_on_save(
                data=SingleSignOnInput(
                    issuer=double.issuer,
                    client_id=CLIENT_ID,
                    client_secret=CLIENT_SECRET,
                    display_name="Neuro Hospital account",
                    allowed_domains="neuro.example.com",
                    enabled=True,
                    required_for_staff=False,
                    trust_provider_mfa=True,
                    mfa_acr_values="",
                )
            )

    def remove() -> None:
        with schema_context("neuro"):
            single_sign_on_remove()
            SocialAccount.objects.all().delete()

    committed(configure)
    yield double
    committed(remove)
    double.stop()


def _through_the_provider(page: Any, site: str, idp: OidcDouble, user: IdentityUser) -> None:
    idp.user = user
    page.goto(site + "/accounts/login/?staff=1")
    page.click("[data-testid=sso-button]")
    page.wait_for_load_state()


def test_staff_sign_in_through_the_hospitals_provider(
    browser: Any, live_platform: Any, neuro_idp: OidcDouble
) -> None:
    site = live_platform.url("neuro").rstrip("/")

    # One factor at the provider: SecondRead still asks for the authenticator's code.
    page = browser.new_context().new_page()
    _through_the_provider(
        page, site, neuro_idp, IdentityUser(sub="c-1", email="coordinator@neuro.example.com", amr=["pwd"])
    )
    assert MFA_URL in page.url, page.url
    for _attempt in range(2):
        code = totp_code()
        page.fill("input[name=code]", code)
        page.click("main form:has(input[name=code]) button[type=submit]")
        page.wait_for_load_state()
        if MFA_URL not in page.url:
            break
        _wait_for_next_code(code)
    page.goto(site + "/workspace/")
    assert page.url == site + "/workspace/"
    assert page.get_by_role("heading", level=1).first.is_visible()

    # The provider asserts MFA (amr "mfa") and the institution trusts it: straight in.
    page = browser.new_context().new_page()
    _through_the_provider(
        page,
        site,
        neuro_idp,
        IdentityUser(sub="r-1", email="reviewer1@neuro.example.com", amr=["pwd", "mfa"]),
    )
    assert MFA_URL not in page.url, page.url
    page.goto(site + "/workspace/")
    assert page.url == site + "/workspace/"

    # A patient's address at the provider: refused, and not signed in.
    page = browser.new_context().new_page()
    _through_the_provider(
        page, site, neuro_idp, IdentityUser(sub="p-1", email="patient@neuro.example.com", amr=["pwd", "mfa"])
    )
    assert page.locator("[data-testid=sso-refused]").inner_text() == NOT_STAFF_HERE
    page.goto(site + "/workspace/")
    assert "/accounts/login/" in page.url
