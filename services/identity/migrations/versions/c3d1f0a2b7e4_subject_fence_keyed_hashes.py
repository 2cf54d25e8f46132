"""subject fences: keyed hashes, raw ids cleared once a deletion is applied

Revision ID: c3d1f0a2b7e4
Revises: bf95dea7ae09
Create Date: 2026-11-28 13:40:00

Adds ``subject_hash`` (HMAC of scope and subject id under the deployment's
secret key) and ``applied_at``; ``subject_id`` and ``tenant_id`` become nullable
so they can be cleared after the deletion. Existing fences get their hash here;
roster key hashes become keyed too (recomputed for students still present; a
fence whose student is already gone keeps its old, unkeyed hash, which no longer
matches - there were none outside development when this was written).
"""
from alembic import op
import sqlalchemy as sa
import weintervene.db


revision = 'c3d1f0a2b7e4'
down_revision = 'bf95dea7ae09'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from weintervene.hashing import keyed_hash as versioned_hash

    def keyed_hash(purpose, value):
        # The shape of this revision's day: 64 hex, no key id (a later revision adds the id).
        return versioned_hash(purpose, value).partition(":")[2]

    with op.batch_alter_table('subject_fence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('applied_at', weintervene.db.UTCDateTime(timezone=True), nullable=True))

    conn = op.get_bind()
    fences = sa.table('subject_fence', sa.column('id'), sa.column('scope'), sa.column('subject_id'),
                      sa.column('subject_hash'), sa.column('roster_key_hash'))
    students = sa.table('student', sa.column('id'), sa.column('tenant_id'), sa.column('roster_key'))
    for fence_id, scope, subject_id in conn.execute(sa.select(fences.c.id, fences.c.scope, fences.c.subject_id)).all():
        values = {"subject_hash": keyed_hash(f"identity-fence:{scope}", str(subject_id))}
        if scope == "student":
            student = conn.execute(sa.select(students.c.tenant_id, students.c.roster_key)
                                   .where(students.c.id == subject_id)).first()
            if student is not None:
                values["roster_key_hash"] = keyed_hash("identity-roster-key", f"{student[0]}:{student[1]}")
        conn.execute(sa.update(fences).where(fences.c.id == fence_id).values(**values))

    with op.batch_alter_table('subject_fence', schema=None) as batch_op:
        batch_op.alter_column('subject_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('subject_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.alter_column('tenant_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.create_unique_constraint('uq_subject_fence_scope_subject_hash', ['scope', 'subject_hash'])


def downgrade() -> None:
    # Sealed fences have no raw id left: they cannot go back to the old shape.
    op.execute("DELETE FROM subject_fence WHERE subject_id IS NULL OR tenant_id IS NULL")
    with op.batch_alter_table('subject_fence', schema=None) as batch_op:
        batch_op.drop_constraint('uq_subject_fence_scope_subject_hash', type_='unique')
        batch_op.alter_column('tenant_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.alter_column('subject_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column('applied_at')
        batch_op.drop_column('subject_hash')
