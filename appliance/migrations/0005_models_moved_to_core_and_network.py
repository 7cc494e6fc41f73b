# AuditEntry now belongs to core, NetworkConfiguration and PendingNetworkChange to network
# (their 0001 migrations); the tables stay where they are.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("appliance", "0004_failedlogin"),
        ("core", "0001_initial"),
        ("network", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="AuditEntry"),
                migrations.DeleteModel(name="NetworkConfiguration"),
                migrations.DeleteModel(name="PendingNetworkChange"),
            ],
            database_operations=[],
        ),
    ]
