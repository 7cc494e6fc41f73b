# The lock-out guard (network.guard) holds the Firewall Lockdown Wizard's changes too: each held
# change says its kind and the browser that made it. The rows made before are network changes.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('network', '0004_snmp_settings'),
    ]

    operations = [
        migrations.AddField(
            model_name='pendingnetworkchange',
            name='kind',
            field=models.CharField(default='network', max_length=32),
        ),
        migrations.AddField(
            model_name='pendingnetworkchange',
            name='browser',
            field=models.CharField(blank=True, max_length=45),
        ),
    ]
