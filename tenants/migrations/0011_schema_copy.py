"""Going live copies the template schema in time that does not grow with the institutions.

django-tenants' ``clone_schema`` (which ``sr_schema_clone`` called until now) finds the
template's objects with catalogue queries that scan every schema's (``pg_depend`` in full,
``pg_indexes`` by table name across all schemas): with 284 schemas one clone took 16.5 s, and
it grows with every institution. ``sr_schema_copy`` reads only the template's own namespace
(by its oid) and makes the copy from PostgreSQL's own descriptions of each object:

1. tables with ``LIKE … INCLUDING`` columns, defaults, identity, generated columns, CHECK
   constraints, indexes with their PRIMARY KEY / UNIQUE / EXCLUDE constraints (exact copies,
   then renamed as in the template, since migrations refer to them by name), storage,
   compression, comments;
2. the template's rows (django_migrations and the like), identity sequences named as the
   template's and set to where they are;
3. functions, foreign keys, then triggers (``pg_get_functiondef`` / ``pg_get_constraintdef``
   / ``pg_get_triggerdef``, the template's name replaced by the new schema's).

What it does not know how to copy (views, sequences not owned by an identity column, types,
policies, rules, partitions, unlogged tables, table options) makes it fail loudly, never copy
part; ``tenants/tests/test_schema_copy.py`` compares a copy with the template object by object.
"""

from django.db import migrations

# sr_schema_clone (migration 0007), now with sr_schema_copy, before with clone_schema.
CLONE = r"""
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
    -- {note}
    {copy}
    PERFORM public.sr_schema_grant(target, session_user::text);
END $$;
"""

FUNCTIONS = r"""
-- What an index is, whatever its name and schema: its table, columns (by name: a copy has no
-- dropped columns, so numbers differ), operator classes, options, kind, expressions, predicate.
CREATE OR REPLACE FUNCTION public.sr_index_shape(index oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT concat_ws('|', c.relname,
        (SELECT string_agg(coalesce(a.attname, '*'), ',' ORDER BY k.n)
         FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
         LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
        i.indclass::text, i.indoption::text, i.indcollation::text, i.indisunique, i.indisprimary,
        i.indisexclusion, i.indnullsnotdistinct, pg_get_expr(i.indexprs, i.indrelid),
        pg_get_expr(i.indpred, i.indrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    WHERE i.indexrelid = index
$$;

CREATE OR REPLACE FUNCTION public.sr_schema_copy(template text, target text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    src oid;
    r record;
    cols text;
    last bigint;
    sequence text;
    renames text[] := '{}';
    step integer;
    called boolean;
    ddl text[] := '{}';
    statement text;
    prefix text := quote_ident(template) || '.';
    replacement text := quote_ident(target) || '.';
BEGIN
    SELECT oid INTO STRICT src FROM pg_namespace WHERE nspname = template;
    IF EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = src AND relkind NOT IN ('r', 'i', 'S'))
       OR EXISTS (
           SELECT 1 FROM pg_class WHERE relnamespace = src AND relkind = 'r'
           AND (relispartition OR relrowsecurity OR relforcerowsecurity OR reloptions IS NOT NULL
                OR relpersistence <> 'p'))
       OR EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = src AND typtype NOT IN ('b', 'c'))
       OR EXISTS (SELECT 1 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = src)
       OR EXISTS (SELECT 1 FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class WHERE c.relnamespace = src)
       OR EXISTS (SELECT 1 FROM pg_constraint WHERE connamespace = src AND contype = 't')
       OR EXISTS (
           SELECT 1 FROM pg_class s WHERE s.relnamespace = src AND s.relkind = 'S' AND NOT EXISTS (
               SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
               AND d.deptype = 'i'))
       OR EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = src AND prokind <> 'f')
    THEN
        RAISE EXCEPTION 'the template % holds objects sr_schema_copy cannot copy', template
            USING ERRCODE = 'feature_not_supported';
    END IF;

    EXECUTE format('CREATE SCHEMA %I', target);

    -- 1 and 2: tables, then their rows, then their identity sequences.
    FOR r IN SELECT oid, relname FROM pg_class WHERE relnamespace = src AND relkind = 'r' ORDER BY 2 LOOP
        EXECUTE format(
            'CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED '
            'INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING STORAGE INCLUDING COMPRESSION '
            'INCLUDING COMMENTS)',
            target, r.relname, template, r.relname);
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
            FROM pg_attribute
            WHERE attrelid = r.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        EXECUTE format('INSERT INTO %I.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %I.%I',
            target, r.relname, cols, cols, template, r.relname);
    END LOOP;
    FOR r IN
        SELECT c.relname AS tbl, a.attname AS col, s.relname AS seq, q.seqtypid::regtype::text AS type
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attidentity <> '' AND NOT a.attisdropped
        JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
            AND d.refobjsubid = a.attnum AND d.deptype = 'i' AND d.classid = 'pg_class'::regclass
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_sequence q ON q.seqrelid = s.oid
        WHERE c.relnamespace = src
    LOOP
        EXECUTE format('SELECT last_value, is_called FROM %I.%I', template, r.seq) INTO last, called;
        sequence := pg_get_serial_sequence(format('%I.%I', target, r.tbl), r.col);
        -- Of the template's type (a column made bigint keeps its integer sequence there).
        EXECUTE format('ALTER SEQUENCE %s AS %s', sequence, r.type);
        PERFORM setval(sequence, last, called);
        -- Named as the template's (a renamed table keeps its sequence's old name).
        IF sequence <> format('%I.%I', target, r.seq) THEN
            EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', sequence, r.seq);
        END IF;
    END LOOP;

    -- The indexes LIKE made (exact copies, with their PRIMARY KEY / UNIQUE / EXCLUDE
    -- constraints) get the template's names, which migrations refer to: each is matched to the
    -- template's index of the same table and definition, renamed to a temporary name first so
    -- that no rename collides with a name not yet given back.
    FOR r IN
        SELECT n.oid AS copy_oid, o.relname AS name
        FROM (
            SELECT x.oid, x.relname, public.sr_index_shape(x.oid) AS shape,
                row_number() OVER (PARTITION BY public.sr_index_shape(x.oid) ORDER BY x.relname) AS nth
            FROM pg_class x WHERE x.relnamespace = src AND x.relkind = 'i'
        ) o
        JOIN (
            SELECT x.oid, public.sr_index_shape(x.oid) AS shape,
                row_number() OVER (PARTITION BY public.sr_index_shape(x.oid) ORDER BY x.relname) AS nth
            FROM pg_class x WHERE x.relnamespace = target::regnamespace AND x.relkind = 'i'
        ) n ON n.shape = o.shape AND n.nth = o.nth
    LOOP
        renames := renames || ARRAY[r.copy_oid::text, r.name];
        EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', target,
            (SELECT relname FROM pg_class WHERE oid = r.copy_oid), '_sr_copy_' || r.copy_oid);
    END LOOP;
    FOR step IN 1 .. coalesce(array_length(renames, 1), 0) / 2 LOOP
        EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', target, '_sr_copy_' || renames[2 * step - 1],
            renames[2 * step]);
    END LOOP;
    IF (SELECT count(*) FROM pg_class WHERE relnamespace = target::regnamespace AND relkind = 'i')
            <> coalesce(array_length(renames, 1), 0) / 2 THEN
        RAISE EXCEPTION 'an index of % has no match in the copy', template;
    END IF;

    -- 3: every other object from PostgreSQL's description of it (search_path is pg_catalog
    -- only, so every name in these is schema-qualified; the template's become the target's).
    SELECT ddl || coalesce(array_agg(pg_get_functiondef(oid) ORDER BY proname), '{}') INTO ddl
        FROM pg_proc WHERE pronamespace = src;
    SELECT ddl || coalesce(array_agg(
            format('ALTER TABLE %I.%I ADD CONSTRAINT %I ', template, c.relname, k.conname)
                || pg_get_constraintdef(k.oid)
            ORDER BY c.relname, k.conname), '{}') INTO ddl
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = src AND k.contype = 'f';
    SELECT ddl || coalesce(array_agg(pg_get_triggerdef(t.oid) ORDER BY c.relname, t.tgname), '{}') INTO ddl
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = src AND NOT t.tgisinternal;
    SELECT ddl || coalesce(array_agg(
            format('ALTER TABLE %I.%I DISABLE TRIGGER %I', template, c.relname, t.tgname)), '{}') INTO ddl
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = src AND NOT t.tgisinternal AND t.tgenabled = 'D';
    FOREACH statement IN ARRAY ddl LOOP
        EXECUTE replace(statement, prefix, replacement);
    END LOOP;
END $$;

REVOKE ALL ON FUNCTION public.sr_schema_copy(text, text) FROM PUBLIC;

"""

FUNCTIONS += CLONE.format(
    copy="PERFORM public.sr_schema_copy(template, target);",
    note="The template's grants are not copied: sr_schema_grant gives the caller its rights.",
)


PREVIOUS = r"""
DROP FUNCTION IF EXISTS public.sr_schema_copy(text, text);
DROP FUNCTION IF EXISTS public.sr_index_shape(oid);
"""

PREVIOUS += CLONE.format(
    copy="PERFORM public.clone_schema(template, target, "
    "'DATA'::public.cloneparms, 'NOACL'::public.cloneparms);",
    note="NOACL: the template's grants are not copied; sr_schema_grant gives the caller its rights.",
)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0010_app_role_operator_history_append_only")]

    operations = [migrations.RunSQL(FUNCTIONS, PREVIOUS)]
