from django.db import migrations, models


def existing_staff_were_invited(apps, schema_editor):  # type: ignore[no-untyped-def]
    User = apps.get_model("accounts", "User")
    User.objects.filter(
        models.Q(is_institution_admin=True) | models.Q(is_coordinator=True) | models.Q(is_reviewer=True)
    ).update(is_invited_staff=True)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="is_invited_staff",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(existing_staff_were_invited, migrations.RunPython.noop),
    ]
