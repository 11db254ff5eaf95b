"""Export, import and delete one institution: offboarding, moving it to another deployment, or
restoring it alone.

The archive (a gzipped tar) holds everything that is the institution's:

- ``tables/<table>.csv``: every table of its schema, as PostgreSQL's ``COPY`` writes it;
- ``files/<key>``: every stored file under its schema's prefix (studies, reports, logos, PDFs);
- ``manifest.json``: the format, the slug and schema, row counts per table, each file's size and
  SHA-256, and its rows of the public schema (the institution, its domains, brand, settings,
  invitations, custom domains, Stripe connection, operator actions) as Django serializes them.

Import recreates the schema from the migrated template (institutions.provisioning), replaces every
table's rows with the archive's (so ids, and every reference between rows, are kept), resets
the id sequences, writes the files back (checking their hashes) and recreates the public rows.
The archive must come from the same code version (same migrations): the schema's own
``django_migrations`` rows travel with it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core import serializers
from django.db import connection, models, transaction
from django_tenants.utils import schema_exists

from institutions.provisioning import _schema_drop, schema_clone
from storage.tenant import tenant_storage
from tenants.database_roles import schema_drop_as_owner
from tenants.models import Domain, Institution, InstitutionRemoval
from tenants.schema import activate_public

logger = logging.getLogger("tenants.transfer")

FORMAT = 1
ALREADY_EXISTS = "An institution with the slug or schema {slug} already exists here."
WHO_AND_WHY = "Say who deletes the institution and why (--by and --reason): both are recorded."
NOT_ITS_ARCHIVE = "That archive is not of {slug}, or its files no longer match: export it again first."


class TransferError(Exception):
    pass


@dataclass(frozen=True)
class Summary:
    slug: str
    tables: dict[str, int]
    files: dict[str, str]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(schema: str) -> list[str]:
    """The schema's tables, each after the tables it references (so rows load in order)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
            [schema],
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT child.relname, parent.relname FROM pg_constraint c "
            "JOIN pg_class child ON child.oid = c.conrelid JOIN pg_class parent ON parent.oid = c.confrelid "
            "JOIN pg_namespace n ON n.oid = child.relnamespace "
            "WHERE c.contype = 'f' AND n.nspname = %s",
            [schema],
        )
        needs: dict[str, set[str]] = {table: set() for table in tables}
        for child, parent in cursor.fetchall():
            if child != parent and parent in needs:
                needs[child].add(parent)
    ordered: list[str] = []
    while needs:
        ready = sorted(table for table, parents in needs.items() if not parents - set(ordered))
        if not ready:  # a cycle: load the rest as they are (none in our models today)
            ready = sorted(needs)
        for table in ready:
            ordered.append(table)
            del needs[table]
    return ordered


def _public_related() -> list[tuple[type[models.Model], str]]:
    """Public-schema models that belong to an institution: (model, its FK field's name)."""
    related = []
    for relation in Institution._meta.related_objects:
        field = relation.field
        if getattr(relation, "on_delete", None) is models.SET_NULL or field.null:
            continue  # a ledger that outlives institutions (processed webhook events)
        related.append((relation.related_model, field.name))
    return related


def _file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def institution_export(*, slug: str, path: Path) -> Summary:
    """Write the institution's archive to ``path``. Reads only; the institution stays live."""
    activate_public()
    institution = Institution.objects.get(slug=slug)
    schema = institution.schema_name
    storage = tenant_storage(schema)
    tables: dict[str, int] = {}
    files: dict[str, str] = {}
    with tarfile.open(path, "w:gz") as tar:
        for table in _tables(schema):
            out = io.BytesIO()
            with connection.cursor() as cursor:
                with cursor.cursor.copy(
                    f"COPY {_quote(schema)}.{_quote(table)} TO STDOUT (FORMAT csv, HEADER)"
                ) as copy:
                    for chunk in copy:
                        out.write(chunk)
                cursor.execute(f"SELECT count(*) FROM {_quote(schema)}.{_quote(table)}")  # noqa: S608 (quoted catalog names)
                tables[table] = int(cursor.fetchone()[0])
            _add(tar, f"tables/{table}.csv", out.getvalue())
        for key in sorted(storage.list_keys("")):
            data = storage.read_bytes(key)
            files[key] = _file_sha256(data)
            _add(tar, f"files/{key}", data)
        public = {"tenants.institution": serializers.serialize("python", [institution])}
        for model, field in _public_related():
            rows = model._default_manager.filter(**{field: institution})
            public[model._meta.label_lower] = serializers.serialize("python", rows)
        manifest = {
            "format": FORMAT,
            "slug": slug,
            "schema": schema,
            "exported_at": datetime.now(UTC).isoformat(),
            "tables": tables,
            "files": files,
            "public": public,
        }
        _add(tar, "manifest.json", json.dumps(manifest, default=str, indent=1).encode())
    logger.info("institution exported", extra={"event": "institution.exported", "institution": slug})
    return Summary(slug, tables, files)


def read_manifest(path: Path) -> dict[str, Any]:
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest: dict[str, Any] = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise TransferError("This archive's format is not one this version reads.")
    return manifest


def _members(tar: tarfile.TarFile, prefix: str) -> Iterator[tuple[str, bytes]]:
    for member in tar.getmembers():
        if member.isfile() and member.name.startswith(prefix):
            handle = tar.extractfile(member)
            assert handle is not None
            yield member.name[len(prefix) :], handle.read()


def institution_import(*, path: Path) -> Summary:
    """Recreate the archived institution here. Refuses if its slug or schema is taken."""
    manifest = read_manifest(path)
    slug, schema = manifest["slug"], manifest["schema"]
    activate_public()
    if Institution.objects.filter(slug=slug).exists() or schema_exists(schema):
        raise TransferError(ALREADY_EXISTS.format(slug=slug))
    schema_clone(schema_name=schema)
    try:
        with tarfile.open(path, "r:gz") as tar:
            tables = dict(_members(tar, "tables/"))
            with transaction.atomic(), connection.cursor() as cursor:
                present = _tables(schema)
                # The template's own rows (migrations, content types, permissions) make way for
                # the archive's. Only tables holding rows: the audit log refuses TRUNCATE even
                # when empty (it is append-only), and a fresh clone has none in it.
                filled = [t for t in present if _has_rows(cursor, schema, t)]
                if filled:
                    cursor.execute(
                        "TRUNCATE " + ", ".join(f"{_quote(schema)}.{_quote(t)}" for t in filled) + " CASCADE"
                    )
                for table in present:
                    data = tables.get(f"{table}.csv")
                    if data is None:
                        continue
                    header = data.split(b"\n", 1)[0].decode()
                    columns = ", ".join(_quote(c.strip('"')) for c in header.split(","))
                    with cursor.cursor.copy(
                        f"COPY {_quote(schema)}.{_quote(table)} ({columns}) FROM STDIN (FORMAT csv, HEADER)"
                    ) as copy:
                        copy.write(data)
                _sequences_reset(cursor, schema)
            storage = tenant_storage(schema)
            for key, data in _members(tar, "files/"):
                if _file_sha256(data) != manifest["files"].get(key):
                    raise TransferError(f"A file of the archive is damaged: {key}")
                storage.save(key, io.BytesIO(data), len(data))
        with transaction.atomic():
            _public_rows_create(manifest["public"])
    except Exception:
        tenant_storage(schema).delete_prefix("")
        _schema_drop(schema_name=schema)
        Institution.objects.filter(slug=slug).delete()
        raise
    logger.info("institution imported", extra={"event": "institution.imported", "institution": slug})
    return Summary(slug, manifest["tables"], manifest["files"])


def _has_rows(cursor: Any, schema: str, table: str) -> bool:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {_quote(schema)}.{_quote(table)})")  # noqa: S608 (quoted)
    return bool(cursor.fetchone()[0])


def _sequences_reset(cursor: Any, schema: str) -> None:
    cursor.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND (is_identity = 'YES' OR column_default LIKE 'nextval%%')",
        [schema],
    )
    for table, column in cursor.fetchall():
        qualified = f"{_quote(schema)}.{_quote(table)}"
        quoted = _quote(column)
        query = (  # quoted catalog names; the values are parameters
            f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX({quoted}), 1), "  # noqa: S608
            f"MAX({quoted}) IS NOT NULL) FROM {qualified}"
        )
        cursor.execute(query, [qualified, column])


def _public_rows_create(public: dict[str, list[dict[str, Any]]]) -> None:
    [institution_row] = public["tenants.institution"]
    institution = Institution(**_plain_fields(Institution, institution_row["fields"]))
    institution.save()
    for label, rows in public.items():
        if label == "tenants.institution":
            continue
        model = apps.get_model(label)
        for row in rows:
            fields = _plain_fields(model, row["fields"])
            for field in model._meta.concrete_fields:
                if field.is_relation and field.related_model is Institution:
                    fields.pop(field.attname, None)
                    fields[field.name] = institution
            model._default_manager.create(**fields)


def _plain_fields(model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
    """Serialized fields as model arguments (foreign keys by id)."""
    plain: dict[str, Any] = {}
    for name, value in fields.items():
        field = model._meta.get_field(name)
        if field.many_to_many or not isinstance(field, models.Field):
            continue
        plain[field.attname] = value
    return plain


def institution_delete(*, slug: str, archive: Path, removed_by: str, reason: str) -> InstitutionRemoval:
    """Remove the institution's schema, files, domains and public rows, after checking that
    ``archive`` is its export and still holds every file it has now (nothing added since).

    Recorded in ``InstitutionRemoval`` (who, why, the archive's sha256), which outlives it, as
    do its operator actions (detached from it, still naming its slug)."""
    if not removed_by.strip() or not reason.strip():
        raise TransferError(WHO_AND_WHY)
    activate_public()
    institution = Institution.objects.get(slug=slug)
    manifest = read_manifest(archive)
    storage = tenant_storage(institution.schema_name)
    if manifest["slug"] != slug or set(storage.list_keys("")) - set(manifest["files"]):
        raise TransferError(NOT_ITS_ARCHIVE.format(slug=slug))
    archive_sha256 = _archive_sha256(archive)
    storage.delete_prefix("")
    # A live institution's schema: only the owner's role may drop it (run this with its URL).
    schema_drop_as_owner(schema_name=institution.schema_name)
    with transaction.atomic():
        for model, field in _public_related():
            model._default_manager.filter(**{field: institution}).delete()
        Domain.objects.filter(tenant=institution).delete()
        removal = InstitutionRemoval.objects.create(
            slug=slug,
            name=institution.name,
            schema_name=institution.schema_name,
            removed_by=removed_by.strip(),
            reason=reason.strip(),
            archive_sha256=archive_sha256,
            archive_files=len(manifest["files"]),
        )
        Institution.objects.filter(pk=institution.pk).delete()
    logger.warning(
        "institution deleted after export",
        extra={"event": "institution.deleted", "institution": slug, "count": len(manifest["files"])},
    )
    return removal


def _archive_sha256(archive: Path) -> str:
    digest = hashlib.sha256()
    with archive.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()
