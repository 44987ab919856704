"""issue 16: bank statements and their transactions, each stored once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:57:49

bank_statement: one row per file imported (format, counts, who and when). bank_transaction: one
row per booked line, unique (creditor_id, account, identity) so a re-imported or overlapping
statement, or two imports at once, record it once; payment_id (the ledger payment it became or
was linked to) is unique, so one payment is never linked to two lines. payment.posted_reference:
the creditor's reference of a transfer posted through the API after a statement line recorded it
(unique per creditor), so posting it again finds the same payment.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bank_statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=12), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('transactions', sa.Integer(), nullable=False),
    sa.Column('new', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('suggested', sa.Integer(), nullable=False),
    sa.Column('unmatched', sa.Integer(), nullable=False),
    sa.Column('imported_by', sa.String(length=254), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditor.id'], name=op.f('fk_bank_statement_creditor_id_creditor')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_statement'))
    )
    with op.batch_alter_table('bank_statement', schema=None) as batch_op:
        batch_op.create_index('ix_bank_statement_creditor_id', ['creditor_id', 'id'], unique=False)

    op.create_table('bank_transaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('identity', sa.String(length=255), nullable=False),
    sa.Column('booking_date', sa.Date(), nullable=False),
    sa.Column('value_date', sa.Date(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('counterparty', sa.String(length=255), nullable=True),
    sa.Column('counterparty_account', sa.String(length=64), nullable=True),
    sa.Column('remittance', sa.Text(), nullable=False),
    sa.Column('structured_reference', sa.String(length=64), nullable=True),
    sa.Column('bank_reference', sa.String(length=255), nullable=True),
    sa.Column('end_to_end_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('debtor_id', sa.Integer(), nullable=True),
    sa.Column('invoice_ids', sa.JSON(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('matched', 'suggested', 'unmatched', 'ignored')", name=op.f('ck_bank_transaction_status')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_bank_transaction_amount_nonzero')),
    sa.CheckConstraint('score BETWEEN 0 AND 100', name=op.f('ck_bank_transaction_score_range')),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditor.id'], name=op.f('fk_bank_transaction_creditor_id_creditor')),
    sa.ForeignKeyConstraint(['debtor_id'], ['debtor.id'], name=op.f('fk_bank_transaction_debtor_id_debtor')),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_bank_transaction_payment_id_payment')),
    sa.ForeignKeyConstraint(['statement_id'], ['bank_statement.id'], name=op.f('fk_bank_transaction_statement_id_bank_statement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_transaction')),
    sa.UniqueConstraint('creditor_id', 'account', 'identity', name=op.f('uq_bank_transaction_creditor_id_account_identity')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_bank_transaction_payment_id'))
    )
    with op.batch_alter_table('bank_transaction', schema=None) as batch_op:
        batch_op.create_index('ix_bank_transaction_creditor_status', ['creditor_id', 'status', 'booking_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_transaction_debtor_id'), ['debtor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bank_transaction_statement_id'), ['statement_id'], unique=False)
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('posted_reference', sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint('uq_payment_creditor_id_posted_reference', ['creditor_id', 'posted_reference'])


def downgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_constraint('uq_payment_creditor_id_posted_reference', type_='unique')
        batch_op.drop_column('posted_reference')
    with op.batch_alter_table('bank_transaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bank_transaction_statement_id'))
        batch_op.drop_index(batch_op.f('ix_bank_transaction_debtor_id'))
        batch_op.drop_index('ix_bank_transaction_creditor_status')

    op.drop_table('bank_transaction')
    with op.batch_alter_table('bank_statement', schema=None) as batch_op:
        batch_op.drop_index('ix_bank_statement_creditor_id')

    op.drop_table('bank_statement')
