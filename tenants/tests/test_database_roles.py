"""The application's own database role (tenants.database_roles): it may append to the audit
log and read it, never change, remove, truncate or drop it; and the application still works
as that role, going live included. Against the tests' PostgreSQL, with a real second role."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.test import override_settings

from institutions.management.commands.seed_demo import DEMO_PASSWORD
from tenants.database_roles import database_app_role_ensure
from tests.live import BASE_DIR, child_database_url, child_env, committed

pytestmark = pytest.mark.django_db


def _role_drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone():
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE "{name}"')


@pytest.fixture
def app_url() -> Iterator[str]:
    """DATABASE_URL of the application's role, created and granted by the owner's command.
    Roles belong to the whole server: the name carries the test database's."""
    admin_url = child_database_url()
    name = f"{settings.DATABASES['default']['NAME']}_app"[:63]
    password = secrets.token_urlsafe(16)
    url = re.sub(r"//[^@/]*@", f"//{quote(name)}:{quote(password)}@", admin_url, count=1)
    _role_drop(admin_url, name)  # left by an interrupted run
    with override_settings(DATABASE_APP_URL=url):
        committed(database_app_role_ensure)
        committed(database_app_role_ensure)  # idempotent: a second deploy changes nothing
        yield url
    _role_drop(admin_url, name)


def _refused(conn: psycopg.Connection, sql: str) -> bool:
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_it_lets_the_application_append_to_the_audit_log_only(app_url: str) -> None:
    with psycopg.connect(app_url, autocommit=True) as conn:
        count = "SELECT count(*) FROM neuro.audit_auditevent"
        before = conn.execute(count).fetchone()
        conn.execute(
            "INSERT INTO neuro.audit_auditevent "
            "(at, actor_email, action, object_ref, allowed, detail, row_hash) "
            "VALUES (now(), '', 'test.append', '', true, '{}', '')"
        )
        after = conn.execute(count).fetchone()
        assert before is not None and after == (before[0] + 1,)
        for attack in (
            "UPDATE neuro.audit_auditevent SET action = 'rewritten'",
            "DELETE FROM neuro.audit_auditevent",
            "TRUNCATE neuro.audit_auditevent",
            "ALTER TABLE neuro.audit_auditevent DISABLE TRIGGER USER",
            "DROP TABLE neuro.audit_auditevent",
            "DROP SCHEMA neuro CASCADE",
            "ALTER SCHEMA neuro RENAME TO neuro_gone",
            "SELECT public.sr_schema_drop('neuro')",  # a live institution's: the owner's job
            "SELECT public.sr_schema_grant('neuro', current_user)",
            "CREATE SCHEMA sneaky",
        ):
            assert _refused(conn, attack), attack
        assert conn.execute(
            "SELECT count(*) FROM neuro.audit_auditevent WHERE action = 'rewritten'"
        ).fetchone() == (0,)
        # Everything else it reads and writes as before.
        conn.execute("UPDATE neuro.review_reviewsettings SET id = id")
        conn.execute("UPDATE neuro.audit_auditchainhead SET seq = seq")


def test_it_grants_every_institution_and_the_template(app_url: str) -> None:
    name = re.search(r"//([^:]+):", app_url).group(1)  # type: ignore[union-attr]
    with psycopg.connect(child_database_url(), autocommit=True) as conn:
        for schema in ("neuro", "cancer", "_sr_template"):
            privileges = conn.execute(
                "SELECT has_table_privilege(%(r)s, %(t)s, 'INSERT'), "
                "has_table_privilege(%(r)s, %(t)s, 'SELECT'), "
                "has_table_privilege(%(r)s, %(t)s, 'UPDATE'), has_table_privilege(%(r)s, %(t)s, 'DELETE'), "
                "has_table_privilege(%(r)s, %(t)s, 'TRUNCATE'), has_table_privilege(%(r)s, %(c)s, 'UPDATE')",
                {"r": name, "t": f"{schema}.audit_auditevent", "c": f"{schema}.intake_case"},
            ).fetchone()
            assert privileges == (True, True, False, False, False, True), schema
        # The platform's history in the public schema is append-only for the application too.
        for table in ("public.tenants_operatoraction", "public.tenants_institutionremoval"):
            privileges = conn.execute(
                "SELECT has_table_privilege(%(r)s, %(t)s, 'INSERT'), "
                "has_table_privilege(%(r)s, %(t)s, 'UPDATE'), "
                "has_table_privilege(%(r)s, %(t)s, 'DELETE'), has_table_privilege(%(r)s, %(t)s, 'TRUNCATE')",
                {"r": name, "t": table},
            ).fetchone()
            assert privileges == (True, False, False, False), table
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('public', 'neuro', 'cancer')"
        ).fetchall()
        assert (name,) not in owners


# Run as the application's role, in a process of its own: a patient signs in (sessions, the
# audit log's sign-in row and chain head), an institution's schema is cloned from the template
# as going live does, holds the same rights (its audit log append-only), and is dropped again.
APP_SCRIPT = """
import json, psycopg
from django.conf import settings
from django.test import Client
from django_tenants.utils import schema_context
from audit.models import AuditEvent
from audit.services import audit_chain_verify
from institutions.provisioning import _schema_drop, schema_clone
from tenants.schema import activate_public

result = {}
client = Client(HTTP_HOST="neuro.localhost")
response = client.post("/accounts/login/", {"login": "patient@neuro.example.com", "password": PASSWORD})
result["sign_in"] = response.status_code
result["portal"] = client.get("/").status_code
with schema_context("neuro"):
    result["signed_in_audited"] = AuditEvent.objects.filter(action="auth.sign_in").exists()
    result["chain_intact"] = audit_chain_verify().intact
schema_clone(schema_name="h9_role_probe")
activate_public()
with psycopg.connect(APP_URL, autocommit=True) as conn:
    try:
        conn.execute("DELETE FROM h9_role_probe.audit_auditevent")
        result["clone_audit_delete"] = "allowed"
    except psycopg.errors.InsufficientPrivilege:
        result["clone_audit_delete"] = "refused"
_schema_drop(schema_name="h9_role_probe")
with psycopg.connect(APP_URL) as conn:
    result["clone_dropped"] = conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'h9_role_probe'").fetchone()[0] == 0
print("RESULT " + json.dumps(result))
"""


@pytest.mark.slow  # runs manage.py in a new Python process
def test_the_application_works_as_its_role(app_url: str) -> None:
    script = APP_SCRIPT.replace("PASSWORD", repr(DEMO_PASSWORD)).replace("APP_URL", repr(app_url))
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR,
        env={**child_env(), "DATABASE_URL": app_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result == {
        "sign_in": 302,
        "portal": 200,
        "signed_in_audited": True,
        "chain_intact": True,
        "clone_audit_delete": "refused",
        "clone_dropped": True,
    }
