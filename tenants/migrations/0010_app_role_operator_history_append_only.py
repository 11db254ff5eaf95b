"""The application's role may also only append to the platform's own history in the public
schema: operator actions and institution removals (INSERT and SELECT; their triggers refuse the
rest anyway, but the table owner could switch those off). Deleting a live institution, the one
change of an operator action allowed (its institution detached), is the owner's job
(``delete_institution`` with the owner's URL)."""

from django.db import migrations

GRANT = r"""
CREATE OR REPLACE FUNCTION public.sr_schema_grant(target text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    append_only text;
BEGIN
    IF grantee IS NULL OR grantee = current_user THEN
        RETURN;  -- one role for everything: it owns what it made
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', target, grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', target, grantee);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', target, grantee);
    -- Append-only for the application: written and read, never changed or removed.
    FOREACH append_only IN ARRAY ARRAY['audit_auditevent', 'tenants_operatoraction', 'tenants_institutionremoval']
    LOOP
        IF to_regclass(format('%I.%I', target, append_only)) IS NOT NULL THEN
            EXECUTE format(
                'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %I.%I FROM %I',
                target, append_only, grantee
            );
        END IF;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION public.sr_schema_grant(text, text) FROM PUBLIC;
"""

GRANT_BEFORE = r"""
CREATE OR REPLACE FUNCTION public.sr_schema_grant(target text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF grantee IS NULL OR grantee = current_user THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', target, grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', target, grantee);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', target, grantee);
    IF to_regclass(format('%I.audit_auditevent', target)) IS NOT NULL THEN
        EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %I.audit_auditevent FROM %I',
            target, grantee
        );
    END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0009_institution_removal_and_detached_operator_actions")]

    operations = [migrations.RunSQL(GRANT, GRANT_BEFORE)]
