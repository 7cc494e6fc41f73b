# NetworkConfiguration and PendingNetworkChange moved here from appliance (release 0.1.0):
# the tables stay as they are; only Django's idea of which app owns them changes (appliance
# 0005 lets go of them).

from django.db import migrations, models


def relabel_content_types(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    content_types.objects.filter(
        app_label="appliance", model__in=["networkconfiguration", "pendingnetworkchange"],
    ).update(app_label="network")


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
                    name="NetworkConfiguration",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("interfaces", models.JSONField(default=dict)),
                        ("vlans", models.JSONField(default=list)),
                        ("gateway4", models.CharField(blank=True, max_length=15,
                                                      verbose_name="Default Gateway IPv4")),
                        ("gateway6", models.CharField(blank=True, max_length=39,
                                                      verbose_name="Default Gateway IPv6")),
                        ("routes", models.JSONField(default=list)),
                        ("hostname", models.CharField(default="lbadmin", max_length=63)),
                        ("dns", models.JSONField(default=list)),
                    ],
                    options={"db_table": "appliance_networkconfiguration"},
                ),
                migrations.CreateModel(
                    name="PendingNetworkChange",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                                   serialize=False, verbose_name="ID")),
                        ("token", models.CharField(max_length=64, unique=True)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("deadline", models.DateTimeField()),
                        ("previous", models.JSONField()),
                        ("confirmed", models.BooleanField(default=False)),
                        ("rolled_back", models.BooleanField(default=False)),
                    ],
                    options={"db_table": "appliance_pendingnetworkchange"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_types, migrations.RunPython.noop),
    ]
