"""Operator actions refuse UPDATE, DELETE and TRUNCATE in the database itself: the record of
who approved or suspended an institution, and why, cannot be rewritten by any code path."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION tenants_operatoraction_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'operator actions are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tenants_operatoraction_append_only
    BEFORE UPDATE OR DELETE ON tenants_operatoraction
    FOR EACH ROW EXECUTE FUNCTION tenants_operatoraction_refuse_change();

CREATE TRIGGER tenants_operatoraction_no_truncate
    BEFORE TRUNCATE ON tenants_operatoraction
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_operatoraction_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS tenants_operatoraction_no_truncate ON tenants_operatoraction;
DROP TRIGGER IF EXISTS tenants_operatoraction_append_only ON tenants_operatoraction;
DROP FUNCTION IF EXISTS tenants_operatoraction_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_onboarding_settings_domains_operators")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
