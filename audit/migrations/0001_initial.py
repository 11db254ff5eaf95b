# The audit log moved from the review app to this bottom-layer app. Its table exists already
# (review 0002, append-only triggers in review 0003, which stay attached through the rename):
# this migration takes it into audit's state and renames it; review 0005 drops it from review's.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('intake', '0005_files_moved_to_imaging'),
        ('review', '0004_follow_up_answer_emailed'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('actor_email', models.CharField(blank=True, max_length=254)),
                        ('action', models.CharField(db_index=True, max_length=64)),
                        ('object_ref', models.CharField(blank=True, max_length=128)),
                        ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                        ('allowed', models.BooleanField(default=True)),
                        ('detail', models.JSONField(blank=True, default=dict)),
                        ('actor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('case', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='intake.case')),
                    ],
                    options={
                        'ordering': ['-at', '-id'],
                    },
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE review_auditevent RENAME TO audit_auditevent",
                    reverse_sql="ALTER TABLE audit_auditevent RENAME TO review_auditevent",
                ),
            ],
        ),
    ]
