# WebUI roles (core.roles). Every user that exists before roles keeps doing what it did:
# `config`, so an upgrade changes nobody's rights.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def existing_users_are_config(apps, schema_editor):
    users = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    roles = apps.get_model("core", "UserRole")
    roles.objects.bulk_create([roles(user_id=pk, role="config")
                               for pk in users.objects.values_list("pk", flat=True)])


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UserRole",
            fields=[
                ("user", models.OneToOneField(
                    on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                    related_name="webui_role", serialize=False, to=settings.AUTH_USER_MODEL)),
                ("role", models.CharField(choices=[
                    ("config", "config: everything"),
                    ("maint", "maint: maintenance actions, no configuration changes"),
                    ("report", "report: read only")], max_length=10)),
            ],
        ),
        migrations.RunPython(existing_users_are_config, migrations.RunPython.noop),
    ]
