"""OneRoster imports: SIS sourcedIds, enrollments, left students, saved CSV column mappings

Revision ID: f1a9c3e5b7d2
Revises: e4b7c2d9a1f6
Create Date: 2026-12-04 20:00:00

``tenant.sis_sourced_id``, ``family_contact.sis_sourced_id``: what re-imports find orgs and
guardians by (a student's sourcedId is its ``roster_key``). ``student.left_at``: a bulk
import no longer listed the student (the ``left_students`` retention policy deletes them).
``serves_link.source``: "oneroster" for links the SIS's enrollments made. ``sis_staff_link``
and ``sis_enrollment`` hold SIS ids only; ``roster_column_mapping`` a school's saved header
mapping; ``roster_import_record`` who imported which package (hash and counts).
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'f1a9c3e5b7d2'
down_revision = 'e4b7c2d9a1f6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sis_sourced_id', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_tenant_sis_sourced_id'), ['sis_sourced_id'], unique=False)
    with op.batch_alter_table('student', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_at', weintervene.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_student_left_at'), ['left_at'], unique=False)
    with op.batch_alter_table('family_contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sis_sourced_id', sa.String(length=255), nullable=True))
    with op.batch_alter_table('serves_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), nullable=True))

    op.create_table('sis_staff_link',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('sourced_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'sourced_id')
    )
    op.create_index(op.f('ix_sis_staff_link_user_id'), 'sis_staff_link', ['user_id'], unique=False)
    op.create_table('sis_enrollment',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('sourced_id', sa.String(length=255), nullable=False),
    sa.Column('class_sourced_id', sa.String(length=255), nullable=False),
    sa.Column('user_sourced_id', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'sourced_id')
    )
    op.create_index(op.f('ix_sis_enrollment_class_sourced_id'), 'sis_enrollment', ['class_sourced_id'], unique=False)
    op.create_index(op.f('ix_sis_enrollment_user_sourced_id'), 'sis_enrollment', ['user_sourced_id'], unique=False)
    op.create_table('roster_column_mapping',
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.Column('updated_by', sa.String(length=36), nullable=True),
    sa.Column('updated_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id')
    )
    op.create_table('roster_import_record',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('actor_user_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('package_sha256', sa.String(length=64), nullable=False),
    sa.Column('contacts_authorised', sa.Boolean(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('imported_at', weintervene.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_roster_import_record_tenant_id'), 'roster_import_record', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_roster_import_record_imported_at'), 'roster_import_record', ['imported_at'], unique=False)


def downgrade() -> None:
    op.drop_table('roster_import_record')
    op.drop_table('roster_column_mapping')
    op.drop_table('sis_enrollment')
    op.drop_table('sis_staff_link')
    with op.batch_alter_table('serves_link', schema=None) as batch_op:
        batch_op.drop_column('source')
    with op.batch_alter_table('family_contact', schema=None) as batch_op:
        batch_op.drop_column('sis_sourced_id')
    with op.batch_alter_table('student', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_student_left_at'))
        batch_op.drop_column('left_at')
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tenant_sis_sourced_id'))
        batch_op.drop_column('sis_sourced_id')
