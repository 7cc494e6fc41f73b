# Local Configuration > System Date & time (issue 15)

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("network", "0002_graphing_settings"),
    ]

    operations = [
        migrations.CreateModel(
            name="DateTimeSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("time_zone", models.CharField(blank=True, default="", max_length=64,
                                               verbose_name="Select Timezone")),
                ("ntp_servers", models.JSONField(default=list)),
            ],
        ),
    ]
