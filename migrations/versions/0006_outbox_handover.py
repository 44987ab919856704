"""outbox: messages handed to the SMTP server, recorded sent after the final dot

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox_handover',
        sa.Column('message_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('handed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('message_id', name=op.f('pk_outbox_handover')),
    )


def downgrade():
    op.drop_table('outbox_handover')
