"""Inbound rows remember failed processing attempts; unprocessed rows are found by index."""

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0003_volunteer_joined_on")]

    initial = False

    operations = [
        ops.AddField(
            model_name="InboundMessage",
            name="attempts",
            field=fields.SmallIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="InboundMessage", name="last_error", field=fields.TextField(null=True)
        ),
        ops.AddField(
            model_name="InboundMessage", name="retry_at", field=fields.DatetimeField(null=True)
        ),
        ops.AddIndex(
            model_name="InboundMessage", index=Index(fields=["processed_at", "id"])
        ),
    ]
