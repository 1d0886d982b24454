from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AttendanceDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('volunteer', fields.ForeignKeyField('models.Volunteer', source_field='volunteer_id', db_constraint=True, to_field='id', related_name='attendance', on_delete=OnDelete.CASCADE)),
                ('local_date', fields.DateField()),
                ('status', fields.CharField(max_length=10)),
                ('minutes', fields.IntField(default=0)),
                ('settled_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'attendance_days', 'app': 'models', 'unique_together': (('volunteer', 'local_date'),), 'pk_attr': 'id', 'table_description': "One volunteer's settled day (day close): done, partial, absent, excused or off."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Volunteer',
            name='ladder_reset_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Volunteer',
            name='on_leave_from',
            field=fields.DateField(null=True),
        ),
    ]
