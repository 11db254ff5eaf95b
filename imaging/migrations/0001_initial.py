# The files of a case (uploads, studies, series, instances, reports, file problems) moved from the
# intake app to this one. Their tables exist already (intake 0001-0004): this migration only tells
# Django's state they are imaging's now and renames the tables; intake 0005 drops them from intake's
# state afterwards. No row is copied.

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('intake', '0004_case_status_note'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Study',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('study_instance_uid', models.CharField(max_length=64)),
                        ('study_date', models.DateField(blank=True, null=True)),
                        ('study_time', models.CharField(blank=True, max_length=16)),
                        ('description', models.CharField(blank=True, max_length=200)),
                        ('accession_number', models.CharField(blank=True, max_length=64)),
                        ('modalities', models.CharField(blank=True, max_length=64)),
                        ('body_part', models.CharField(blank=True, max_length=64)),
                        ('referring_physician', models.CharField(blank=True, max_length=200)),
                        ('patient_name_in_files', models.CharField(blank=True, max_length=200)),
                        ('patient_id_in_files', models.CharField(blank=True, max_length=64)),
                        ('patient_birth_date_in_files', models.CharField(blank=True, max_length=16)),
                        ('patient_sex_in_files', models.CharField(blank=True, max_length=16)),
                        ('series_count', models.PositiveIntegerField(default=0)),
                        ('instance_count', models.PositiveIntegerField(default=0)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='studies', to='intake.case')),
                    ],
                    options={
                        'ordering': ['study_date', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='Series',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('series_instance_uid', models.CharField(max_length=64)),
                        ('series_number', models.IntegerField(blank=True, null=True)),
                        ('modality', models.CharField(blank=True, max_length=16)),
                        ('description', models.CharField(blank=True, max_length=200)),
                        ('body_part', models.CharField(blank=True, max_length=64)),
                        ('instance_count', models.PositiveIntegerField(default=0)),
                        ('preview_key', models.CharField(blank=True, max_length=300)),
                        ('preview_instance_count', models.PositiveIntegerField(default=0)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('study', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='series', to='imaging.study')),
                    ],
                    options={
                        'ordering': ['series_number', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='Upload',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('public_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ('kind', models.CharField(choices=[('imaging', 'Imaging'), ('report', 'Report')], default='imaging', max_length=10)),
                        ('status', models.CharField(choices=[('receiving', 'Receiving'), ('received', 'Received'), ('ingesting', 'Processing'), ('done', 'Processed'), ('failed', 'Could not be processed'), ('expired', 'Expired')], db_index=True, default='receiving', max_length=12)),
                        ('relative_path', models.CharField(blank=True, max_length=1000)),
                        ('length', models.BigIntegerField(blank=True, null=True)),
                        ('offset', models.BigIntegerField(default=0)),
                        ('storage_key', models.CharField(max_length=300)),
                        ('multipart_id', models.CharField(blank=True, max_length=200)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('sha256', models.CharField(blank=True, max_length=64)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('updated', models.DateTimeField(auto_now=True)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('parts', models.JSONField(blank=True, default=list)),
                        ('tail_key', models.CharField(blank=True, max_length=300)),
                        ('error_message', models.CharField(blank=True, max_length=300)),
                        ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='uploads', to='intake.case')),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='uploads', to=settings.AUTH_USER_MODEL)),
                    ],
                ),
                migrations.CreateModel(
                    name='Report',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('public_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ('kind', models.CharField(choices=[('radiology', 'Radiology report'), ('pathology', 'Pathology report'), ('clinical', 'Clinical letter or summary'), ('other', 'Other')], default='radiology', max_length=12)),
                        ('original_name', models.CharField(blank=True, max_length=255)),
                        ('content_type', models.CharField(max_length=100)),
                        ('storage_key', models.CharField(max_length=300)),
                        ('size', models.BigIntegerField(default=0)),
                        ('extracted_text', models.TextField(blank=True)),
                        ('match_status', models.CharField(choices=[('pending', 'Not yet matched'), ('matched', 'Matched automatically'), ('unmatched', 'No matching study found'), ('corrected', 'Matched by staff')], default='pending', max_length=12)),
                        ('match_reason', models.CharField(blank=True, max_length=300)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reports', to='intake.case')),
                        ('study', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reports', to='imaging.study')),
                        ('upload', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='imaging.upload')),
                    ],
                ),
                migrations.CreateModel(
                    name='Instance',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('sop_instance_uid', models.CharField(max_length=64)),
                        ('sop_class_uid', models.CharField(blank=True, max_length=64)),
                        ('instance_number', models.IntegerField(blank=True, null=True)),
                        ('transfer_syntax_uid', models.CharField(blank=True, max_length=64)),
                        ('rows', models.PositiveIntegerField(blank=True, null=True)),
                        ('columns', models.PositiveIntegerField(blank=True, null=True)),
                        ('number_of_frames', models.PositiveIntegerField(default=1)),
                        ('slice_location', models.FloatField(blank=True, null=True)),
                        ('storage_key', models.CharField(max_length=300)),
                        ('size', models.BigIntegerField(default=0)),
                        ('preamble_cleared', models.BooleanField(default=False)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('series', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='instances', to='imaging.series')),
                        ('upload', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='instances', to='imaging.upload')),
                    ],
                    options={
                        'ordering': ['instance_number', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='FileProblem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('path', models.CharField(blank=True, max_length=1000)),
                        ('code', models.CharField(choices=[('not_dicom', 'Not a medical image file'), ('skipped_program', 'Viewer program or system file, skipped'), ('truncated', 'The file is damaged or incomplete'), ('unsafe_archive', 'Unsafe archive entry, skipped'), ('archive_limit', 'Archive too large or too many files'), ('duplicate', 'Duplicate image, stored once'), ('preamble_cleared', 'Suspicious file header removed'), ('empty', 'Empty file'), ('unreadable', 'Could not be read'), ('inconsistent_patient', 'Images of more than one patient'), ('missing_files', 'Images listed on the disc but not uploaded'), ('report_refused', 'Not a readable PDF or photo')], max_length=24)),
                        ('message', models.CharField(max_length=300)),
                        ('created', models.DateTimeField(auto_now_add=True)),
                        ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='file_problems', to='intake.case')),
                        ('upload', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='problems', to='imaging.upload')),
                    ],
                    options={
                        'ordering': ['id'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='study',
                    constraint=models.UniqueConstraint(fields=('case', 'study_instance_uid'), name='study_unique_per_case'),
                ),
                migrations.AddConstraint(
                    model_name='series',
                    constraint=models.UniqueConstraint(fields=('study', 'series_instance_uid'), name='series_unique_per_study'),
                ),
                migrations.AddConstraint(
                    model_name='instance',
                    constraint=models.UniqueConstraint(fields=('series', 'sop_instance_uid'), name='instance_unique_per_series'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE intake_upload RENAME TO imaging_upload",
                    reverse_sql="ALTER TABLE imaging_upload RENAME TO intake_upload",
                ),
                migrations.RunSQL(
                    "ALTER TABLE intake_study RENAME TO imaging_study",
                    reverse_sql="ALTER TABLE imaging_study RENAME TO intake_study",
                ),
                migrations.RunSQL(
                    "ALTER TABLE intake_series RENAME TO imaging_series",
                    reverse_sql="ALTER TABLE imaging_series RENAME TO intake_series",
                ),
                migrations.RunSQL(
                    "ALTER TABLE intake_instance RENAME TO imaging_instance",
                    reverse_sql="ALTER TABLE imaging_instance RENAME TO intake_instance",
                ),
                migrations.RunSQL(
                    "ALTER TABLE intake_report RENAME TO imaging_report",
                    reverse_sql="ALTER TABLE imaging_report RENAME TO intake_report",
                ),
                migrations.RunSQL(
                    "ALTER TABLE intake_fileproblem RENAME TO imaging_fileproblem",
                    reverse_sql="ALTER TABLE imaging_fileproblem RENAME TO intake_fileproblem",
                ),
            ],
        ),
    ]
