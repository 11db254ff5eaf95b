"""The authentication backends: Django's and allauth's, with the signed-in user's row read by a
statement compiled once.

Every request of a signed-in user loads that user (``django.contrib.auth.get_user`` calls the
backend's ``get_user``); under a folder drop that is every tus request (issue 13). Only how the
row is read changes (``tenants.prepared``): the same row, read afresh each request, and the same
checks after it (an inactive user is no one; ``django.contrib.auth`` still verifies the
session's password hash), so deactivating a user or changing a password signs them out as before.

Sessions started before these classes existed name Django's and allauth's own backends:
``accounts.sessions`` reads those names as these (:data:`RENAMED_BACKENDS`), so nobody is signed
out by the change.
"""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from accounts.models import User
from tenants.prepared import PreparedSelect

_USER_BY_ID = PreparedSelect(lambda pk: User.objects.filter(pk=pk)[:1], -1)


def _active_user(backend: DjangoModelBackend, user_id: int) -> User | None:
    user = _USER_BY_ID.first(user_id)
    return user if user is not None and backend.user_can_authenticate(user) else None


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id: int) -> User | None:
        return _active_user(self, user_id)


class AuthenticationBackend(AllauthBackend):
    def get_user(self, user_id: int) -> User | None:
        return _active_user(self, user_id)


RENAMED_BACKENDS = {
    "django.contrib.auth.backends.ModelBackend": "accounts.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend": "accounts.backends.AuthenticationBackend",
}
