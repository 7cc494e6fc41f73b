# AuditEntry moved here from appliance (release 0.1.0): the table stays as it is; only
# Django's idea of which app owns it changes (appliance 0005 lets go of it).

from django.db import migrations, models


def relabel_content_type(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    content_types.objects.filter(app_label="appliance", model="auditentry").update(
        app_label="core")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("appliance", "0004_failedlogin"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("user", models.CharField(max_length=150)),
                        ("action", models.CharField(max_length=300)),
                    ],
                    options={"ordering": ["-at", "-id"], "db_table": "appliance_auditentry"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_type, migrations.RunPython.noop),
    ]
