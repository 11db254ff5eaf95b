# The audit log moved to the audit app (see audit 0001, which renamed its table): state only.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0004_follow_up_answer_emailed'),
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='AuditEvent',
                ),
            ],
            database_operations=[],
        ),
    ]
