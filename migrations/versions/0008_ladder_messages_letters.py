"""issue 14's schema: the ladder on the invoice, charges as open items, the message's one amount,
letters' postal address and short links, the creditor's hold on a dunning day

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 07:40:00

Rows already there keep their meaning: an invoice's rung is the highest rung of its reminders
already sent (the ladder continues from there), each reminder's rung is its step's ordinal among
its plan's after-due steps (offset > 0), and every existing invoice is an invoice, not charges.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='invoice', nullable=False))
        batch_op.add_column(sa.Column('charged_invoice_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rung_reached', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('rung_sent_on', sa.Date(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_invoice_charged_invoice_id_invoice'), 'invoice',
                                    ['charged_invoice_id'], ['id'])
        batch_op.create_check_constraint(batch_op.f('ck_invoice_kind'), "kind IN ('invoice', 'charges')")
        batch_op.create_index('ix_invoice_charged_invoice_id', ['charged_invoice_id'], unique=False)
    with op.batch_alter_table('debtor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.Text(), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_debtor_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_debtor_kind'), "kind IN ('business', 'public', 'consumer')")
    with op.batch_alter_table('creditor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hold_dunning', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('dunning_day', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('released_by', sa.String(length=254), nullable=True))
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('payment_reference', sa.String(length=25), nullable=True))
        batch_op.add_column(sa.Column('deadline', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('delivery', sa.String(length=12), nullable=True))
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('short_code', sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_portal_link_message_id_outbox_message'), 'outbox_message',
                                    ['message_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_portal_link_short_code'), ['short_code'])
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rung', sa.Integer(), nullable=True))

    # A reminder's rung: its step's ordinal among the after-due steps of its plan.
    op.execute("UPDATE reminder SET rung = (SELECT count(*) FROM dunning_step s, dunning_step mine "
               "WHERE mine.id = reminder.step_id AND s.plan_id = mine.plan_id AND s.offset_days > 0 "
               "AND s.position <= mine.position) "
               "WHERE step_id IS NOT NULL AND EXISTS (SELECT 1 FROM dunning_step mine "
               "WHERE mine.id = reminder.step_id AND mine.offset_days > 0)")
    # An invoice's rung: the highest one sent, and the day it was sent for.
    op.execute("UPDATE invoice SET rung_reached = (SELECT max(r.rung) FROM reminder r "
               "WHERE r.invoice_id = invoice.id AND r.status = 'sent' AND r.rung IS NOT NULL), "
               "rung_sent_on = (SELECT max(r.dunning_date) FROM reminder r WHERE r.invoice_id = invoice.id "
               "AND r.status = 'sent' AND r.rung = (SELECT max(r2.rung) FROM reminder r2 "
               "WHERE r2.invoice_id = invoice.id AND r2.status = 'sent')) "
               "WHERE EXISTS (SELECT 1 FROM reminder r WHERE r.invoice_id = invoice.id AND r.status = 'sent' "
               "AND r.rung IS NOT NULL)")


def downgrade():
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_column('rung')
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_portal_link_short_code'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_portal_link_message_id_outbox_message'), type_='foreignkey')
        batch_op.drop_column('short_code')
        batch_op.drop_column('message_id')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        for column in ('delivery', 'deadline', 'payment_reference', 'currency', 'amount'):
            batch_op.drop_column(column)
    with op.batch_alter_table('dunning_day', schema=None) as batch_op:
        for column in ('released_by', 'released_at', 'held'):
            batch_op.drop_column(column)
    with op.batch_alter_table('creditor', schema=None) as batch_op:
        batch_op.drop_column('hold_dunning')
    op.execute("UPDATE debtor SET kind = 'business' WHERE kind = 'public'")
    with op.batch_alter_table('debtor', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_debtor_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_debtor_kind'), "kind IN ('business', 'consumer')")
        batch_op.drop_column('address')
    # Charges stay on the account as ordinary open items: they were claimed, and may be paid.
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_charged_invoice_id')
        batch_op.drop_constraint(batch_op.f('ck_invoice_kind'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_invoice_charged_invoice_id_invoice'), type_='foreignkey')
        for column in ('rung_sent_on', 'rung_reached', 'charged_invoice_id', 'kind'):
            batch_op.drop_column(column)
