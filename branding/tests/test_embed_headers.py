"""Who may frame an institution's pages, and the button script's content."""

from __future__ import annotations

import json
import re

from django.test import Client

from branding.models import Brand
from tenants.models import Institution


def test_it_denies_framing_when_no_website_is_allowed(neuro: Institution) -> None:
    response = Client(HTTP_HOST="neuro.localhost").get("/embed/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_it_allows_only_the_institutions_listed_origins(neuro: Institution, cancer: Institution) -> None:
    Brand.objects.filter(institution=neuro).update(embed_origins="https://www.northfield.example.org")
    response = Client(HTTP_HOST="neuro.localhost").get("/embed/")
    assert "X-Frame-Options" not in response
    policy = response["Content-Security-Policy"]
    assert policy.endswith("frame-ancestors 'self' https://www.northfield.example.org")
    assert "'none'; frame" not in policy and policy.count("frame-ancestors") == 1
    # another institution's pages are not affected
    assert Client(HTTP_HOST="cancer.localhost").get("/embed/")["X-Frame-Options"] == "DENY"


def test_it_never_lets_staff_pages_or_settings_be_framed(neuro: Institution) -> None:
    Brand.objects.filter(institution=neuro).update(embed_origins="https://www.northfield.example.org")
    client = Client(HTTP_HOST="neuro.localhost")
    for path in (
        "/settings/",
        "/workspace/",
        "/accounts/2fa/authenticate/",
        "/accounts/password/reset/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/payments/settings/",
        "/payments/case/00000000-0000-0000-0000-000000000000/checkout/",
        "/files/x",
        "/opinions/00000000-0000-0000-0000-000000000000/",
    ):
        response = client.get(path)
        assert response.get("X-Frame-Options") == "DENY", path
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"], path


def test_it_lets_the_portal_pages_meant_for_embedding_be_framed(neuro: Institution) -> None:
    Brand.objects.filter(institution=neuro).update(embed_origins="https://www.northfield.example.org")
    client = Client(HTTP_HOST="neuro.localhost")
    for path in ("/embed/", "/", "/accounts/login/", "/accounts/signup/", "/cases/new/"):
        response = client.get(path)
        assert "X-Frame-Options" not in response, path
        assert (
            "frame-ancestors 'self' https://www.northfield.example.org" in response["Content-Security-Policy"]
        )


def test_it_serves_a_button_script_in_the_institutions_colours(neuro: Institution) -> None:
    response = Client(HTTP_HOST="neuro.localhost").get("/embed.js")
    assert response["Content-Type"].startswith("application/javascript")
    script = response.content.decode()
    config = json.loads(re.search(r"var config = (\{.*?\});", script).group(1))  # type: ignore[union-attr]
    assert config["primary"] == "#4b2e83"
    assert config["portal"] == "http://neuro.localhost/"
    assert config["name"] == "Northfield Neurological Institute"


def test_it_escapes_the_institution_name_in_the_script(neuro: Institution) -> None:
    Institution.objects.filter(pk=neuro.pk).update(name="</script><script>alert(1)</script>")
    script = Client(HTTP_HOST="neuro.localhost").get("/embed.js").content.decode()
    assert "</script>" not in script


def test_it_has_no_embed_on_the_platform_domain(platform_client: Client) -> None:
    assert platform_client.get("/embed.js").status_code == 404


def test_it_reports_whether_cookies_come_back_in_the_frame(neuro: Institution) -> None:
    client = Client(HTTP_HOST="neuro.localhost")
    assert client.get("/embed/probe").json() == {"cookies": False}
    client.get("/embed/")
    assert client.get("/embed/probe").json() == {"cookies": True}
