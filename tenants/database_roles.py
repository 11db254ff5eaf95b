"""Two database roles: the owner, which runs migrations and owns every table, and the
application's role, which web and workers connect as.

The application's role reads and writes every table but holds only INSERT and SELECT on the
audit log (``audit_auditevent``): it cannot change or remove an audit row, and, owning no
table, cannot switch the table's triggers off or drop it either. It makes and removes
institution schemas only through the owner's functions ``sr_schema_clone`` / ``sr_schema_drop``
(tenants migration 0007), which grant it the same rights on the new schema.

``database_app_role_ensure`` (``manage.py db_app_role``, run by the deploy's migrate step as
the owner) creates the role if missing and grants it on every schema; it is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection

from tenants.schema import activate_public

# The schema new institutions are cloned from (institutions.provisioning keeps it migrated). Not
# a valid institution schema name (those are slugs or "inst_<hex>"), and refused as a storage
# folder (leading "_"), so it can never be mistaken for a tenant; sr_schema_clone clones it only.
TEMPLATE_SCHEMA = "_sr_template"


@dataclass(frozen=True)
class AppRole:
    name: str
    password: str


def app_role() -> AppRole | None:
    """The application's role named by ``DATABASE_APP_URL`` (None: one role does everything)."""
    url = settings.DATABASE_APP_URL
    if not url:
        return None
    parts = urlsplit(url)
    return AppRole(name=unquote(parts.username or ""), password=unquote(parts.password or ""))


def schema_clone_from_template(*, template: str, schema_name: str) -> None:
    """Clone ``template`` into a new schema as the owner; the caller's role gets its rights."""
    activate_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT public.sr_schema_clone(%s, %s)", [template, schema_name])
    schema_app_grant(schema_name=schema_name)


def schema_drop_unless_live(*, schema_name: str) -> None:
    """Drop a schema that no live institution holds (refused by the database otherwise)."""
    activate_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT public.sr_schema_drop(%s)", [schema_name])


def schema_app_grant(*, schema_name: str) -> None:
    """Grant the application's role its rights on ``schema_name``: for schemas the owner made
    outside a migrate run (an operator's ``institution_create`` or import, run as the owner)."""
    role = app_role()
    if role is None:
        return
    with connection.cursor() as cursor:
        # Not created yet (the deploy's first migrate run): `db_app_role` grants every schema then.
        cursor.execute(
            "SELECT public.sr_schema_grant(%s, rolname) FROM pg_roles WHERE rolname = %s",
            [schema_name, role.name],
        )


def database_app_role_ensure() -> list[str]:
    """Create the application's role if missing and grant it on every schema there is (public,
    the template, every institution's). Returns the schemas granted. Precondition: connected
    as the owner, after migrating."""
    role = app_role()
    if role is None:
        return []
    activate_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
        if not role.name or role.name == owner:
            raise ValueError(
                "DATABASE_APP_URL must name a role other than the owner's (DATABASE_URL's user)."
            )
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role.name])
        if cursor.fetchone() is None:
            # Only what it needs: it logs in, nothing more (no superuser, no CREATEDB/ROLE).
            cursor.execute(
                f"CREATE ROLE {connection.ops.quote_name(role.name)} LOGIN NOSUPERUSER NOCREATEDB "
                "NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %s",
                [role.password or None],
            )
        name = connection.ops.quote_name(role.name)
        cursor.execute(
            f"GRANT CONNECT, TEMPORARY ON DATABASE {connection.ops.quote_name(database)} TO {name}"
        )
        cursor.execute(f"REVOKE CREATE ON DATABASE {connection.ops.quote_name(database)} FROM {name}")
        cursor.execute(f"GRANT EXECUTE ON FUNCTION public.sr_schema_clone(text, text) TO {name}")
        cursor.execute(f"GRANT EXECUTE ON FUNCTION public.sr_schema_drop(text) TO {name}")
        # Every schema that exists: public, the template, and each institution's (drafts' too).
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = 'public' OR nspname = %s "
            "OR nspname IN (SELECT schema_name FROM public.tenants_institution) ORDER BY nspname",
            [TEMPLATE_SCHEMA],
        )
        schemas = [row[0] for row in cursor.fetchall()]
        for schema in schemas:
            cursor.execute("SELECT public.sr_schema_grant(%s, %s)", [schema, role.name])
    return schemas


def schema_drop_as_owner(*, schema_name: str) -> None:
    """Drop an institution's schema, live or not (deleting an exported institution). Only the
    owner may: as the application's role this fails (the role owns no schema)."""
    activate_public()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema_name)} CASCADE")
