# Local Configuration › Graphing: how often the graphs' sampler runs and whether it keeps the
# real servers' series (one row; until it is saved the sampler takes the defaults).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("network", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="GraphingSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("interval", models.PositiveSmallIntegerField(
                    choices=[(5, "5 s"), (10, "10 s"), (30, "30 s"), (60, "60 s")], default=5,
                    verbose_name="Sample every")),
                ("real_servers", models.BooleanField(default=True,
                                                     verbose_name="Keep real servers' graphs")),
            ],
        ),
    ]
