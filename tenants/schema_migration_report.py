"""The migration report: schemas grouped by version, the running and the failed ones."""

from __future__ import annotations

from collections import defaultdict

from django_tenants.utils import get_public_schema_name

from tenants.models import Institution, SchemaMigrationState
from tenants.schema_migrations import (
    applied_migrations,
    migrations_on_disk,
    schemas_to_migrate,
    states_record_current,
)


def migration_report(*, check: bool = False) -> str:
    schemas = list(
        Institution.objects.exclude(schema_name=get_public_schema_name()).values_list(
            "schema_name", flat=True
        )
    )
    existing = schemas_to_migrate(schemas)
    wanted = migrations_on_disk()
    if check:
        applied = applied_migrations(existing)
        states_record_current({schema: done for schema, done in applied.items() if wanted <= done})
        SchemaMigrationState.objects.filter(
            schema_name__in=[schema for schema, done in applied.items() if not wanted <= done],
            status=SchemaMigrationState.Status.CURRENT,
        ).delete()
    states = {
        state.schema_name: state for state in SchemaMigrationState.objects.filter(schema_name__in=existing)
    }
    newest: dict[str, str] = {}
    for app, name in wanted:
        newest[app] = max(newest.get(app, ""), name)
    by_version: dict[str, list[str]] = defaultdict(list)
    lines = [
        f"{len(schemas)} institution(s): {len(existing)} with a schema, "
        f"{len(schemas) - len(existing)} not live (drafts, skipped by migrate)"
    ]
    unknown = []
    for schema in existing:
        state = states.get(schema)
        if state is None:
            unknown.append(schema)
        elif state.status != SchemaMigrationState.Status.CURRENT:
            by_version[state.status].append(schema)
        else:
            behind = sorted(
                f"{app}.{name}" for app, name in state.versions.items() if name < newest.get(app, "")
            )
            by_version["latest" if not behind else "behind: " + ", ".join(behind)].append(schema)
    for version, names in sorted(by_version.items()):
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        lines.append(f"{version}: {len(names)} ({shown})")
        if version == SchemaMigrationState.Status.FAILED:
            for name in names[:20]:
                lines.append(f"  {name}: {states[name].error}")
    if unknown:
        lines.append(f"not checked yet: {len(unknown)} (run migrate, or this report with --check)")
    return "\n".join(lines) + "\n"
