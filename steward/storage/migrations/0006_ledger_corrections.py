"""Ledger corrections name the entry they correct; office points entries record who made them."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0005_telegram_details")]

    initial = False

    operations = [
        ops.AddField(
            model_name="PointsEntry",
            name="corrects",
            field=fields.ForeignKeyField(
                "models.PointsEntry",
                source_field="corrects_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="corrections",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.AddField(
            model_name="PointsEntry",
            name="actor",
            field=fields.CharField(default="", db_default="", max_length=100),
        ),
        ops.AddField(
            model_name="HoursEntry",
            name="corrects",
            field=fields.ForeignKeyField(
                "models.HoursEntry",
                source_field="corrects_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="corrections",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
    ]
