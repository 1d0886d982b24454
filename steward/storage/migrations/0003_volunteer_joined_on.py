"""Volunteers get a stored join date; existing rows take the UTC day their row was written."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


async def backfill_joined_on(apps, schema_editor):  # type: ignore[no-untyped-def]
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        sql = "UPDATE volunteers SET joined_on = (created_at AT TIME ZONE 'UTC')::date"
    else:
        sql = "UPDATE volunteers SET joined_on = date(created_at)"
    await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [("models", "0002_attendance_and_leave_dates")]

    initial = False

    operations = [
        ops.AddField(model_name="Volunteer", name="joined_on", field=fields.DateField(null=True)),
        ops.RunPython(backfill_joined_on, ops.RunPython.noop),
        ops.AlterField(model_name="Volunteer", name="joined_on", field=fields.DateField()),
    ]
