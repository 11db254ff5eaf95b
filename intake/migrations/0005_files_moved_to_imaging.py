# The files of a case moved to the imaging app (see imaging 0001, which renamed their tables):
# state only, nothing happens in the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('intake', '0004_case_status_note'),
        ('imaging', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='instance',
                    name='series',
                ),
                migrations.RemoveField(
                    model_name='instance',
                    name='upload',
                ),
                migrations.RemoveField(
                    model_name='report',
                    name='case',
                ),
                migrations.RemoveField(
                    model_name='report',
                    name='study',
                ),
                migrations.RemoveField(
                    model_name='report',
                    name='upload',
                ),
                migrations.RemoveField(
                    model_name='series',
                    name='study',
                ),
                migrations.RemoveField(
                    model_name='study',
                    name='case',
                ),
                migrations.RemoveField(
                    model_name='upload',
                    name='case',
                ),
                migrations.RemoveField(
                    model_name='upload',
                    name='owner',
                ),
                migrations.DeleteModel(
                    name='FileProblem',
                ),
                migrations.DeleteModel(
                    name='Instance',
                ),
                migrations.DeleteModel(
                    name='Report',
                ),
                migrations.DeleteModel(
                    name='Series',
                ),
                migrations.DeleteModel(
                    name='Study',
                ),
                migrations.DeleteModel(
                    name='Upload',
                ),
            ],
            database_operations=[],
        ),
    ]
