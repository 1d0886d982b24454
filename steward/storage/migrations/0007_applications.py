"""Applications by text (SPEC §9): answers, the street's decision, the pledge's acceptance.

Volunteer status gains `resigned` (退出). The column is a plain VARCHAR(10) without a check, so
no schema change is needed; `makemigrations` proposes an AlterField for the enum's description,
left out on purpose: on SQLite it rebuilds the volunteers table, which fails on a populated
database (foreign keys point at it).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from steward.storage.models import ApplicationStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_ledger_corrections')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Application',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=16)),
                ('address', fields.CharField(max_length=64)),
                ('phone', fields.CharField(null=True, max_length=20)),
                ('language', fields.CharField(default='zh', max_length=2)),
                ('status', fields.CharEnumField(default=ApplicationStatus.DRAFT, description='DRAFT: draft\nPENDING: pending\nAPPROVED: approved\nJOINED: joined\nDECLINED: declined\nLAPSED: lapsed', enum_type=ApplicationStatus, max_length=10)),
                ('step', fields.CharField(null=True, max_length=32)),
                ('step_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('name', fields.CharField(default='', max_length=100)),
                ('community', fields.ForeignKeyField('models.Community', source_field='community_id', null=True, db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.RESTRICT)),
                ('birth', fields.CharField(default='', max_length=7)),
                ('party_member', fields.BooleanField(null=True)),
                ('experience', fields.CharField(default='', max_length=200)),
                ('lane', fields.CharField(default='', max_length=200)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pair', fields.ForeignKeyField('models.Pair', source_field='pair_id', null=True, db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.SET_NULL)),
                ('decided_by', fields.CharField(default='', max_length=100)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decline_reason', fields.CharField(default='', max_length=200)),
                ('pledge_accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lapsed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('volunteer', fields.ForeignKeyField('models.Volunteer', source_field='volunteer_id', null=True, db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'applications', 'app': 'models', 'indexes': [Index(fields=['address', 'status']), Index(fields=['community_id', 'status'])], 'pk_attr': 'id', 'table_description': 'Someone who applied by text to become a steward: their answers and what became of it.'},
            bases=['Model'],
        ),
    ]
