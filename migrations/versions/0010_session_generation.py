"""issue 15: sign-out ends the session on the server. A creditor user's session generation (in the
back-office cookie; a sign-out or a new password moves it on) and one row per portal session
(named by the portal cookie; a sign-out ends it)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 11:00:00

Sessions opened before this migration carry neither: their users sign in again (back office) or
open their link again (portal).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('creditor_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
    op.create_table(
        'portal_session',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['link_id'], ['portal_link.id'], name=op.f('fk_portal_session_link_id_portal_link')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_session')),
    )
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.create_index('ix_portal_session_link_id', ['link_id'], unique=False)


def downgrade():
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.drop_index('ix_portal_session_link_id')
    op.drop_table('portal_session')
    with op.batch_alter_table('creditor_user', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
