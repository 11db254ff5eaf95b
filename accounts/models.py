"""User accounts. The table exists in every schema: platform operators in the public schema,
each institution's patients and staff in that institution's schema, so an account of one
institution does not exist in another."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("is_operator", True)
        return self.create_user(email, password, **fields)


class User(AbstractUser):
    """A person who signs in. Roles are per institution because the table is per schema."""

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    # The language a patient last used the site in (settings.LANGUAGES; "" until their first
    # page): emails about their case are written in it, also when staff's action sends them.
    language = models.CharField(max_length=8, blank=True, default="")

    # Staff roles inside an institution; a person may hold several. A user with none is a
    # patient (or someone acting for one).
    is_institution_admin = models.BooleanField(default=False)
    is_coordinator = models.BooleanField(default=False)
    is_reviewer = models.BooleanField(default=False)
    # Staff roles may only be held by accounts that joined through a staff invitation (or were
    # created as the institution's first administrator): a patient's self-made account never
    # becomes staff, whatever the roster form is sent.
    is_invited_staff = models.BooleanField(default=False)
    # Meaningful in the public schema only: platform operators, who never see patient data.
    is_operator = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()  # type: ignore[misc,assignment]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def is_institution_staff(self) -> bool:
        return self.is_institution_admin or self.is_coordinator or self.is_reviewer

    @property
    def role_names(self) -> list[str]:
        names = []
        if self.is_institution_admin:
            names.append("Administrator")
        if self.is_coordinator:
            names.append("Coordinator")
        if self.is_reviewer:
            names.append("Reviewer")
        return names or (["Operator"] if self.is_operator else ["Patient"])


class SingleSignOn(models.Model):
    """An institution's own identity provider (OpenID Connect) for its staff: one row in the
    institution's schema, set by its administrator (accounts.sso). Never used for patients.

    The client secret is encrypted at rest like the second-factor secrets
    (``accounts.mfa_adapter.secret_encrypt``, keys from ``MFA_ENCRYPTION_KEYS``).
    """

    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField(blank=True)
    display_name = models.CharField(max_length=100, default="your organisation")
    # Email domains allowed to sign in this way (lower case, comma-separated); empty: any
    # domain, as long as the address belongs to one of the institution's staff accounts.
    allowed_domains = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=False)
    # Staff may not sign in with a password at all (patients still do).
    required_for_staff = models.BooleanField(default=False)
    # The provider's own second factor counts as ours when its ID token says one was used
    # (amr "mfa", or an acr listed here); otherwise the authenticator app is still asked for.
    trust_provider_mfa = models.BooleanField(default=False)
    mfa_acr_values = models.CharField(max_length=500, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Single sign-on through {self.issuer}"
