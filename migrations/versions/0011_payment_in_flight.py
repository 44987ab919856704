"""issue 15: at most one payment attempt in flight per invoice, held by the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:40:00

Each attempt line carries `in_flight` (its attempt is created or processing), and a partial
unique index on (invoice_id) where in_flight keeps a second attempt for the same invoice out,
whatever the method. Rows already there: a line is in flight when its attempt is; where the old
code let several attempts run for one invoice, only the newest stays marked (the others keep
their status, and money they still bring is recorded as any other, a credit if nothing is left
to pay).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_attempt_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_flight', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.execute("UPDATE payment_attempt_line SET in_flight = (SELECT payment_attempt.status IN ('created', 'processing') "
               "FROM payment_attempt WHERE payment_attempt.id = payment_attempt_line.attempt_id)")
    op.execute("UPDATE payment_attempt_line SET in_flight = false WHERE in_flight AND EXISTS (SELECT 1 FROM "
               "payment_attempt_line newer WHERE newer.invoice_id = payment_attempt_line.invoice_id "
               "AND newer.in_flight AND newer.attempt_id > payment_attempt_line.attempt_id)")
    with op.batch_alter_table('payment_attempt_line', schema=None) as batch_op:
        batch_op.create_index('uq_payment_attempt_line_in_flight', ['invoice_id'], unique=True,
                              postgresql_where=sa.text('in_flight'), sqlite_where=sa.text('in_flight'))


def downgrade():
    with op.batch_alter_table('payment_attempt_line', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_attempt_line_in_flight', postgresql_where=sa.text('in_flight'),
                            sqlite_where=sa.text('in_flight'))
        batch_op.drop_column('in_flight')
