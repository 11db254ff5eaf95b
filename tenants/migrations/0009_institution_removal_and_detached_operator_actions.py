"""Deleting an institution (after its export) keeps its history.

- Operator actions name their institution by slug too, and lose only the link to it when it is
  deleted: the append-only trigger lets exactly that change through (institution_id to NULL,
  every other column unchanged) and refuses every other UPDATE, DELETE and TRUNCATE as before.
  Before, an institution that had ever been approved or suspended could not be deleted at all.
- ``tenants_institutionremoval`` records each deletion (which, by whom, why, which archive),
  append-only in the same way.
"""

import django.db.models.deletion
from django.db import migrations, models

SLUGS_FILL = """
ALTER TABLE tenants_operatoraction DISABLE TRIGGER tenants_operatoraction_append_only;
UPDATE tenants_operatoraction AS action SET institution_slug = institution.slug
    FROM tenants_institution AS institution WHERE institution.id = action.institution_id;
ALTER TABLE tenants_operatoraction ENABLE TRIGGER tenants_operatoraction_append_only;
"""

OPERATOR_ACTIONS_DETACHABLE = """
CREATE OR REPLACE FUNCTION tenants_operatoraction_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.institution_id IS NOT NULL AND NEW.institution_id IS NULL
       AND (to_jsonb(NEW) - 'institution_id') = (to_jsonb(OLD) - 'institution_id') THEN
        RETURN NEW;  -- its institution was deleted: the action stays, named by its slug
    END IF;
    RAISE EXCEPTION 'operator actions are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

OPERATOR_ACTIONS_STRICT = """
CREATE OR REPLACE FUNCTION tenants_operatoraction_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'operator actions are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

REMOVALS_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION tenants_institutionremoval_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'institution removals are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tenants_institutionremoval_append_only
    BEFORE UPDATE OR DELETE ON tenants_institutionremoval
    FOR EACH ROW EXECUTE FUNCTION tenants_institutionremoval_refuse_change();

CREATE TRIGGER tenants_institutionremoval_no_truncate
    BEFORE TRUNCATE ON tenants_institutionremoval
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_institutionremoval_refuse_change();
"""

REMOVALS_FREE = """
DROP TRIGGER IF EXISTS tenants_institutionremoval_no_truncate ON tenants_institutionremoval;
DROP TRIGGER IF EXISTS tenants_institutionremoval_append_only ON tenants_institutionremoval;
DROP FUNCTION IF EXISTS tenants_institutionremoval_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("tenants", "0008_institution_time_zone")]

    operations = [
        migrations.AddField(
            model_name="operatoraction",
            name="institution_slug",
            field=models.SlugField(default="", max_length=63),
            preserve_default=False,
        ),
        migrations.RunSQL(SLUGS_FILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="operatoraction",
            name="institution",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="operator_actions",
                to="tenants.institution",
            ),
        ),
        migrations.RunSQL(OPERATOR_ACTIONS_DETACHABLE, OPERATOR_ACTIONS_STRICT),
        migrations.CreateModel(
            name="InstitutionRemoval",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.SlugField(max_length=63)),
                ("name", models.CharField(max_length=200)),
                ("schema_name", models.CharField(max_length=63)),
                ("removed_by", models.CharField(max_length=254)),
                ("reason", models.TextField()),
                ("archive_sha256", models.CharField(max_length=64)),
                ("archive_files", models.PositiveIntegerField()),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["-created"]},
        ),
        migrations.RunSQL(REMOVALS_APPEND_ONLY, REMOVALS_FREE),
    ]
