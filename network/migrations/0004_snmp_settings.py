# Local Configuration > SNMP Configuration (issue 14)

from django.db import migrations, models

import network.models


class Migration(migrations.Migration):

    dependencies = [
        ("network", "0003_date_time_settings"),
    ]

    operations = [
        migrations.CreateModel(
            name="SnmpSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("enabled", models.BooleanField(default=False, verbose_name="Enable SNMP")),
                ("v2c_enabled", models.BooleanField(default=False, verbose_name="SNMP v2c")),
                ("community", models.CharField(
                    blank=True, max_length=32,
                    validators=[network.models.validate_snmp_community],
                    verbose_name="Community")),
                ("source_network", models.CharField(
                    blank=True, max_length=18,
                    help_text="Only this IPv4 network may ask with the community, e.g. "
                              "198.51.100.0/24.",
                    validators=[network.models.validate_source_network],
                    verbose_name="Allowed source network")),
                ("v3_enabled", models.BooleanField(default=False, verbose_name="SNMP v3")),
                ("v3_user", models.CharField(
                    blank=True, max_length=32, validators=[network.models.validate_snmp_user],
                    verbose_name="User name")),
                ("auth_protocol", models.CharField(
                    choices=[("SHA-256", "SHA-256"), ("SHA", "SHA (SHA-1)")], default="SHA-256",
                    max_length=8, verbose_name="Authentication protocol")),
                ("auth_passphrase", models.CharField(
                    blank=True, max_length=64,
                    validators=[network.models.validate_snmp_passphrase],
                    verbose_name="Authentication passphrase")),
                ("priv_protocol", models.CharField(
                    choices=[("AES", "AES (128-bit)")], default="AES", max_length=8,
                    verbose_name="Privacy protocol")),
                ("priv_passphrase", models.CharField(
                    blank=True, max_length=64,
                    validators=[network.models.validate_snmp_passphrase],
                    verbose_name="Privacy passphrase")),
                ("location", models.CharField(
                    blank=True, max_length=255, validators=[network.models.validate_snmp_line],
                    verbose_name="Location (sysLocation)")),
                ("contact", models.CharField(
                    blank=True, max_length=255, validators=[network.models.validate_snmp_line],
                    verbose_name="Contact (sysContact)")),
            ],
        ),
    ]
