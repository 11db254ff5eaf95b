"""Tenant tables never reference public tables (except an allowed list), so an institution's
schema can be moved to another database on its own (docs/scaling.md: shard map or Citus
schema-based sharding, where a foreign key or join from a distributed schema to a table on
another node does not exist).

Two checks: the models (every foreign key, one-to-one and many-to-many of a model that lives
in institution schemas; ORM joins only follow those) and the database itself (the foreign-key
constraints of an institution's schema, which would also catch one made by hand in a
migration).
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db

# (tenant model, public model) pairs allowed to be related, each with the reason. Empty today.
ALLOWED: dict[tuple[str, str], str] = {}


def _labels(names: list[str]) -> set[str]:
    labels = set()
    for name in names:
        for config in apps.get_app_configs():
            if config.name == name:
                labels.add(config.label)
    return labels


def test_no_model_of_an_institution_schema_relates_to_a_public_only_model() -> None:
    tenant = _labels(settings.TENANT_APPS)
    shared = _labels(settings.SHARED_APPS)
    tenant_only, public_only = tenant - shared, shared - tenant
    assert tenant_only and public_only
    crossings = []
    for model in apps.get_models():
        if model._meta.app_label not in tenant:
            continue
        for field in model._meta.get_fields():
            related = getattr(field, "related_model", None)
            if (
                not field.is_relation
                or related is None
                or not (field.many_to_one or field.one_to_one or field.many_to_many)
            ):
                continue
            if getattr(field, "auto_created", False) and not field.concrete:
                continue  # the reverse side of a relation declared elsewhere
            if related._meta.app_label in public_only:
                pair = (model._meta.label, related._meta.label)
                if pair not in ALLOWED:
                    crossings.append(f"{pair[0]}.{field.name} -> {pair[1]}")
    assert crossings == []


def test_no_foreign_key_of_an_institution_schema_points_at_another_schema() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT src.relname, dst_ns.nspname, dst.relname
            FROM pg_constraint c
            JOIN pg_class src ON src.oid = c.conrelid
            JOIN pg_namespace src_ns ON src_ns.oid = src.relnamespace
            JOIN pg_class dst ON dst.oid = c.confrelid
            JOIN pg_namespace dst_ns ON dst_ns.oid = dst.relnamespace
            WHERE c.contype = 'f' AND src_ns.nspname = %s AND dst_ns.nspname <> src_ns.nspname
            """,
            ["neuro"],
        )
        crossing = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) FROM pg_constraint c JOIN pg_class s ON s.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = s.relnamespace WHERE c.contype = 'f' AND n.nspname = 'neuro'"
        )
        assert cursor.fetchone()[0] > 10  # the query does see the schema's foreign keys
    allowed_tables = {
        (apps.get_model(tenant_label)._meta.db_table, apps.get_model(public_label)._meta.db_table)
        for tenant_label, public_label in ALLOWED
    }
    assert [row for row in crossing if (row[0], row[2]) not in allowed_tables] == []
