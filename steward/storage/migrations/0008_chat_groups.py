"""Telegram groups: one-time invite codes, bound lead and office groups, edited report cards."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from steward.storage.models import Role


class Migration(migrations.Migration):
    dependencies = [("models", "0007_applications")]

    initial = False

    operations = [
        ops.AddField(
            model_name="OutboxMessage",
            name="edit_message_id",
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name="OutboxMessage",
            name="attachment",
            field=fields.CharField(max_length=255, null=True),
        ),
        ops.CreateModel(
            name="ChatInvite",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("code", fields.CharField(unique=True, max_length=16)),
                ("role", fields.CharEnumField(enum_type=Role, max_length=10, description="STEWARD: steward\nLEAD: lead\nOFFICE: office")),
                ("street", fields.ForeignKeyField("models.Street", source_field="street_id", db_constraint=True, to_field="id", related_name="chat_invites", on_delete=OnDelete.CASCADE)),
                ("community", fields.ForeignKeyField("models.Community", source_field="community_id", null=True, db_constraint=True, to_field="id", related_name="chat_invites", on_delete=OnDelete.CASCADE)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("used_by_chat_id", fields.BigIntField(null=True)),
            ],
            options={"table": "chat_invites", "app": "models", "pk_attr": "id", "table_description": "A one-time code that binds a Telegram group to a community's leads or a street office."},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ChatGroup",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("chat_id", fields.BigIntField(unique=True)),
                ("title", fields.CharField(default="", max_length=200)),
                ("role", fields.CharEnumField(enum_type=Role, max_length=10, description="STEWARD: steward\nLEAD: lead\nOFFICE: office")),
                ("street", fields.ForeignKeyField("models.Street", source_field="street_id", db_constraint=True, to_field="id", related_name="chat_groups", on_delete=OnDelete.CASCADE)),
                ("community", fields.ForeignKeyField("models.Community", source_field="community_id", null=True, db_constraint=True, to_field="id", related_name="chat_groups", on_delete=OnDelete.CASCADE)),
                ("bound_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "chat_groups", "app": "models", "pk_attr": "id", "table_description": "A Telegram group bound to a community's leads (role lead) or a street office (office)."},
            bases=["Model"],
        ),
    ]
