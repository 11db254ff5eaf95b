"""Institutions (tenants) and their domains. Both live in the public schema."""

from __future__ import annotations

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Institution(TenantMixin):
    """A hospital, institute or imaging centre; one PostgreSQL schema holds all its data."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending approval"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=40, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    status_changed = models.DateTimeField(null=True, blank=True)

    # django-tenants: create and migrate the schema when the row is first saved.
    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == "public"


class Domain(DomainMixin):
    """A host name routed to an institution (``<slug>.<platform domain>`` or its own)."""

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain
