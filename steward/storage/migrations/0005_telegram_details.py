"""Telegram: what came with an update (contact, location), and keyboards on our messages."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0004_inbound_retries")]

    initial = False

    operations = [
        ops.AddField(
            model_name="InboundMessage", name="details", field=fields.JSONField(null=True)
        ),
        ops.AddField(
            model_name="OutboxMessage",
            name="keyboard",
            field=fields.CharField(max_length=20, null=True),
        ),
    ]
