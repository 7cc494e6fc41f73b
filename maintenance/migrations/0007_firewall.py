# Maintenance › Firewall Lockdown Wizard and Firewall Script

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('maintenance', '0006_security_settings'),
    ]

    operations = [
        migrations.CreateModel(
            name='FirewallLockdown',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('enabled', models.BooleanField(default=False, verbose_name='Lock down the WebUI and SSH')),
                ('networks', models.TextField(blank=True, verbose_name='Administration networks')),
            ],
        ),
        migrations.CreateModel(
            name='FirewallScript',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('script', models.TextField(blank=True, verbose_name='Firewall script')),
                ('saved_at', models.DateTimeField(blank=True, null=True)),
            ],
        ),
    ]
