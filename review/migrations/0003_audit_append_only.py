"""The audit log refuses UPDATE and DELETE in the database itself, so no code path (the admin,
a shell, a bug, a compromised web process using the app's role) can rewrite history.

Runs in every institution's schema (django-tenants migrates each); the function is created in
the schema being migrated, and the trigger names the table unqualified for the same reason.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION review_auditevent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER review_auditevent_append_only
    BEFORE UPDATE OR DELETE ON review_auditevent
    FOR EACH ROW EXECUTE FUNCTION review_auditevent_refuse_change();

CREATE TRIGGER review_auditevent_no_truncate
    BEFORE TRUNCATE ON review_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION review_auditevent_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS review_auditevent_no_truncate ON review_auditevent;
DROP TRIGGER IF EXISTS review_auditevent_append_only ON review_auditevent;
DROP FUNCTION IF EXISTS review_auditevent_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("review", "0002_review_workspace")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
