"""Requests as views see them, typed: which institution, which account.

django-tenants' middleware puts the institution whose site was asked on ``request.tenant``, and
Django's authentication middleware puts the account (or ``AnonymousUser``) on ``request.user``;
neither is visible to mypy on a plain :class:`~django.http.HttpRequest`. A view annotates its
request with the class that states what is guaranteed when it runs:

- :class:`InstitutionRequest`: any view of an institution's URLconf (``config/urls_tenant.py``);
  ``request.tenant`` is the institution (never the public tenant: the platform's domain is served
  by ``config/urls_public.py``).
- :class:`SignedInRequest`: also behind a wrapper that refuses the signed-out (``login_required``,
  ``review.decorators.case_endpoint``/``staff_page``, ``intake``'s wizard steps); ``request.user``
  is a :class:`~accounts.models.User`.

These are annotations only: nothing constructs them, the object is Django's own request. Code
that runs before those guarantees hold (middleware, context processors, the platform's views)
keeps ``HttpRequest`` and asks (``tenants.access.request_institution``, ``isinstance``).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.models import User
from tenants.models import Institution


class InstitutionRequest(HttpRequest):
    tenant: Institution
    user: User | AnonymousUser  # our account model, or signed out


class SignedInRequest(InstitutionRequest):
    user: User
