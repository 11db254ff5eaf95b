"""Functions through which the application's restricted database role makes and removes
institution schemas without owning them (tenants.database_roles).

The application connects as a role that may read and write the tables but owns none of them,
so it cannot rewrite the audit log (it holds INSERT and SELECT only on ``audit_auditevent``)
nor switch its triggers off or drop it. Going live still has to create a schema: the role
calls ``sr_schema_clone``, which runs as the owner (SECURITY DEFINER), clones the template and
grants the caller the same rights as on every other schema. ``sr_schema_drop`` removes a
draft's schema (a failed or abandoned go-live), never a live institution's: that is the owner's
job (``manage.py delete_institution`` run with the owner's URL).

With one role for everything (development), the functions run as that role and grant nothing.
"""

from django.db import migrations
from django_tenants.clone import CloneSchema

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION public.sr_schema_name_check(target text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    -- Institution schemas are slugs or inst_<hex>: never public, pg_*, or the template (_sr_...).
    IF target IS NULL OR target !~ '^[a-z][a-z0-9_]{0,62}$' OR target = 'public'
            OR target LIKE 'pg\_%' OR target = 'information_schema' THEN
        RAISE EXCEPTION 'not an institution schema: %', target USING ERRCODE = '42501';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION public.sr_schema_grant(target text, grantee text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF grantee IS NULL OR grantee = current_user THEN
        RETURN;  -- one role for everything: it owns what it made
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', target, grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', target, grantee);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', target, grantee);
    IF to_regclass(format('%I.audit_auditevent', target)) IS NOT NULL THEN
        -- Append-only for the application: written and read, never changed or removed.
        EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON %I.audit_auditevent FROM %I',
            target, grantee
        );
    END IF;
END $$;

CREATE OR REPLACE FUNCTION public.sr_schema_clone(template text, target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF template <> '_sr_template' THEN
        RAISE EXCEPTION 'not the template schema: %', template USING ERRCODE = '42501';
    END IF;
    PERFORM public.sr_schema_name_check(target);
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE lower(nspname) = lower(target)) THEN
        RAISE EXCEPTION 'schema % already exists', target USING ERRCODE = '42P06';
    END IF;
    -- NOACL: the template's grants are not copied (clone_schema trips over identity
    -- sequences doing so); sr_schema_grant gives the caller its rights on the new schema.
    PERFORM public.clone_schema(template, target, 'DATA'::public.cloneparms, 'NOACL'::public.cloneparms);
    PERFORM public.sr_schema_grant(target, session_user::text);
END $$;

CREATE OR REPLACE FUNCTION public.sr_schema_drop(target text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM public.sr_schema_name_check(target);
    IF EXISTS (
        SELECT 1 FROM public.tenants_institution WHERE schema_name = target AND went_live IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'the schema of a live institution (%) is dropped by the owner only', target
            USING ERRCODE = '42501';
    END IF;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', target);
END $$;

-- Nobody but the owner and the roles it grants (tenants.database_roles) may call them.
REVOKE ALL ON FUNCTION public.sr_schema_grant(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.sr_schema_clone(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.sr_schema_drop(text) FROM PUBLIC;
"""

REMOVE = """
DROP FUNCTION IF EXISTS public.sr_schema_drop(text);
DROP FUNCTION IF EXISTS public.sr_schema_clone(text, text);
DROP FUNCTION IF EXISTS public.sr_schema_grant(text, text);
DROP FUNCTION IF EXISTS public.sr_schema_name_check(text);
"""


def clone_function_create(apps: object, schema_editor: object) -> None:
    # django-tenants' clone_schema, which sr_schema_clone calls (created here, by the owner,
    # because the application's role may not create functions).
    CloneSchema()._create_clone_schema_function()


class Migration(migrations.Migration):
    dependencies = [("tenants", "0006_institutionsettings_fee_waivers_only")]

    operations = [
        migrations.RunPython(clone_function_create, migrations.RunPython.noop),
        migrations.RunSQL(FUNCTIONS, REMOVE),
    ]
