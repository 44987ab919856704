"""issue 19: a letter of the print queue marked posted (the creditor's proof of sending)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:30:00

When, how (ordinary, or registered with acknowledgement of receipt) and by whom a letter was
posted, with La Poste's tracking number: all NULL until the creditor marks it posted.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('posted_by', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('postage', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('tracking_number', sa.String(length=40), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_postage'),
                                         "postage IN ('ordinary', 'registered')")


def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_postage'), type_='check')
        batch_op.drop_column('tracking_number')
        batch_op.drop_column('postage')
        batch_op.drop_column('posted_by')
        batch_op.drop_column('posted_at')
