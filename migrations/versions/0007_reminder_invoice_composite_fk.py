"""reminder: one composite key (invoice_id, creditor_id, debtor_id) -> invoice instead of three; position in its unique index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:50:00

A reminder's creditor and debtor are its invoice's, by constraint; the invoice refers to its
creditor and debtor itself. One key check per inserted reminder instead of three (the planner
inserts tens of thousands in one statement). An invoice moved to another debtor takes its
reminders along (ON UPDATE CASCADE). On PostgreSQL the unique (invoice_id, step_code) index
also carries the position (INCLUDE), so the planner's one probe per open invoice reads the
index alone (rebuilt here: on a large reminder table this takes a while and locks it).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Reminders written before this revision carry their invoice's creditor and debtor (every
    # writer copies them from the invoice); one that does not would make the new key fail here,
    # so align them first: the invoice is the truth.
    op.execute("UPDATE reminder "
               "SET creditor_id = (SELECT invoice.creditor_id FROM invoice WHERE invoice.id = reminder.invoice_id), "
               "debtor_id = (SELECT invoice.debtor_id FROM invoice WHERE invoice.id = reminder.invoice_id) "
               "WHERE EXISTS (SELECT 1 FROM invoice WHERE invoice.id = reminder.invoice_id "
               "AND (invoice.creditor_id <> reminder.creditor_id OR invoice.debtor_id <> reminder.debtor_id))")
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_invoice_id_creditor_id_debtor_id'),
                                          ['id', 'creditor_id', 'debtor_id'])
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_constraint('fk_reminder_invoice_id_invoice', type_='foreignkey')
        batch_op.drop_constraint('fk_reminder_debtor_id_debtor', type_='foreignkey')
        batch_op.drop_constraint('fk_reminder_creditor_id_creditor', type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_reminder_invoice_id_invoice'), 'invoice',
                                    ['invoice_id', 'creditor_id', 'debtor_id'], ['id', 'creditor_id', 'debtor_id'],
                                    onupdate='CASCADE')
        batch_op.drop_constraint('uq_reminder_invoice_id_step_code', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_reminder_invoice_id_step_code'), ['invoice_id', 'step_code'],
                                          postgresql_include=[sa.column('position')])


def downgrade():
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_constraint('uq_reminder_invoice_id_step_code', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_reminder_invoice_id_step_code'), ['invoice_id', 'step_code'])
        batch_op.drop_constraint('fk_reminder_invoice_id_invoice', type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_reminder_creditor_id_creditor'), 'creditor', ['creditor_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_reminder_debtor_id_debtor'), 'debtor', ['debtor_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_reminder_invoice_id_invoice'), 'invoice', ['invoice_id'], ['id'])
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_invoice_id_creditor_id_debtor_id'), type_='unique')
