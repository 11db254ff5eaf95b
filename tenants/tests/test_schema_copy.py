"""Going live copies the template schema (``sr_schema_copy``, tenants migration 0011): the copy
must be the template object by object, or a new institution would lack an index, a constraint
or the audit log's triggers. Compared here through PostgreSQL's own descriptions of every
object, with the schema's name taken out."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from tenants.database_roles import TEMPLATE_SCHEMA

COPY = "copy_probe"

# Each query describes one kind of object of the schema %(schema)s. Neither schema is on the
# search_path, so their names in the descriptions are qualified (then made schema-neutral).
DESCRIPTIONS = {
    "tables": """
        SELECT relname, relkind::text, relpersistence::text, coalesce(reloptions::text, '')
        FROM pg_class WHERE relnamespace = %(schema)s::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S')
        ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
               a.attidentity::text, a.attgenerated::text, coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
               coalesce(a.attcollation::regcollation::text, ''),
               (SELECT count(*) FROM pg_attribute b WHERE b.attrelid = a.attrelid AND b.attnum > 0
                AND NOT b.attisdropped AND b.attnum < a.attnum)::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = %(schema)s::regnamespace AND k.contype <> 'n'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT x.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
        WHERE x.relnamespace = %(schema)s::regnamespace ORDER BY 1""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal ORDER BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = %(schema)s::regnamespace ORDER BY 1""",
    "sequences": """
        SELECT c.relname, s.seqtypid::regtype::text, s.seqstart::text, s.seqincrement::text,
               s.seqmax::text, s.seqmin::text, s.seqcache::text, s.seqcycle::text
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        WHERE c.relnamespace = %(schema)s::regnamespace ORDER BY 1""",
}


def _describe(schema: str) -> dict[str, list[tuple[str, ...]]]:
    described = {}
    with connection.cursor() as cursor:
        for kind, sql in DESCRIPTIONS.items():
            cursor.execute(sql, {"schema": schema})
            described[kind] = [
                tuple(str(value).replace(f"{schema}.", "S.") for value in row) for row in cursor.fetchall()
            ]
        described["rows"] = []
        for (table,) in [(row[0],) for row in described["tables"] if row[1] == "r"]:
            cursor.execute(
                f"SELECT count(*)::text, coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "  # noqa: S608 (catalogue names)
                f'FROM "{schema}"."{table}" t'
            )
            described["rows"].append((table, *cursor.fetchone()))
        described["sequence positions"] = []
        for (sequence,) in [(row[0],) for row in described["sequences"]]:
            cursor.execute(f'SELECT last_value::text, is_called::text FROM "{schema}"."{sequence}"')  # noqa: S608
            described["sequence positions"].append((sequence, *cursor.fetchone()))
    return described


# DDL is transactional in PostgreSQL: what these tests make goes with the test's transaction.


@pytest.mark.django_db
def test_a_copy_of_the_template_is_the_template_object_by_object() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT public.sr_schema_copy(%s, %s)", [TEMPLATE_SCHEMA, COPY])
    template, copy = _describe(TEMPLATE_SCHEMA), _describe(COPY)
    assert template["tables"], "the test database has no migrated template"
    assert template["triggers"], "the audit log's append-only triggers are in the template"
    assert template["indexes"] and template["constraints"] and template["sequences"]
    for kind in template:
        assert copy[kind] == template[kind], kind
    with connection.cursor() as cursor:
        # The copy stands alone: nothing in it depends on the template.
        cursor.execute(
            "SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid "
            "JOIN pg_class r ON r.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass "
            "WHERE c.relnamespace = %s::regnamespace AND r.relnamespace = %s::regnamespace",
            [COPY, TEMPLATE_SCHEMA],
        )
        assert cursor.fetchone()[0] == 0
        # Its audit log refuses changes through its own trigger.
        insert = f'INSERT INTO "{COPY}".django_content_type (app_label, model) VALUES (%s, %s)'  # noqa: S608
        cursor.execute(insert, ["x", "y"])
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(f'TRUNCATE "{COPY}".audit_auditevent')


@pytest.mark.django_db
def test_a_template_with_what_the_copy_cannot_make_is_refused_and_nothing_is_made() -> None:
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "_copy_probe_template"')
        cursor.execute('CREATE TABLE "_copy_probe_template".t (id int PRIMARY KEY)')
        cursor.execute('CREATE VIEW "_copy_probe_template".v AS SELECT id FROM "_copy_probe_template".t')
    with (
        pytest.raises(DatabaseError, match="cannot copy"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT public.sr_schema_copy('_copy_probe_template', %s)", [COPY])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [COPY])
        assert cursor.fetchone()[0] == 0
