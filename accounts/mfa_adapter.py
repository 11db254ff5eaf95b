"""Second-factor secrets encrypted at rest.

allauth stores each TOTP secret (and the recovery codes' seed) in ``Authenticator.data`` and
passes it through the MFA adapter's ``encrypt`` / ``decrypt``. Here they are Fernet tokens
(AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the keys in ``MFA_ENCRYPTION_KEYS``
(environment): the first key encrypts, every listed key decrypts, so a key is rotated by
putting a new one first, running ``manage.py mfa_secrets_reencrypt``, then dropping the old.
A database backup alone therefore holds no usable second factor.

Stored values carry the prefix ``fernet:``; a value without it is a secret stored in clear
before encryption existed, still read (and encrypted by ``mfa_secrets_reencrypt``).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from allauth.mfa.adapter import DefaultMFAAdapter
from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


def key_from_text(text: str) -> bytes:
    """A Fernet key: given as one (44 url-safe base64 characters), or derived from any text."""
    try:
        if len(base64.urlsafe_b64decode(text.encode())) == 32:
            return text.encode()
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key_from_text(key)) for key in keys])


def mfa_fernet() -> MultiFernet:
    return _fernet(tuple(settings.MFA_ENCRYPTION_KEYS))


def secret_encrypt(text: str) -> str:
    return PREFIX + mfa_fernet().encrypt(text.encode()).decode()


def secret_decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # stored in clear before encryption (see the module docstring)
    return mfa_fernet().decrypt(stored[len(PREFIX) :].encode()).decode()


def secret_reencrypt(stored: str) -> str:
    """``stored`` under the current first key (clear values are encrypted)."""
    if not stored.startswith(PREFIX):
        return secret_encrypt(stored)
    return PREFIX + mfa_fernet().rotate(stored[len(PREFIX) :].encode()).decode()


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return secret_encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return secret_decrypt(encrypted_text)
