"""issue 18: every channel of CONTRACT §9 in plans, call tasks, the debtor's owner

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-06 16:00:00

A plan step may go by e-mail, SMS (by e-mail until SMS is set up), letter or call. A call step
makes a task (one per debtor, kind and day, by constraint) gathering the invoices that reached it;
its reminders wait as `awaiting_call` until the task's outcome records them sent. A step removed
from its plan while reminders refer to it is kept, retired. A debtor may have an owner, the
collector in charge, who gets its call tasks.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None

STATUSES = "'planned', 'awaiting_approval', 'sent', 'skipped', 'failed', 'cancelled'"


def upgrade():
    with op.batch_alter_table('dunning_step', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_dunning_step_channel'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_dunning_step_channel'),
                                         "channel IN ('email', 'sms', 'letter', 'call')")
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_reminder_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_reminder_status'),
            "status IN ('planned', 'awaiting_approval', 'awaiting_call', 'sent', 'skipped', 'failed', 'cancelled')")
    with op.batch_alter_table('debtor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_debtor_owner_id_creditor_user'), 'creditor_user', ['owner_id'],
                                    ['id'], ondelete='SET NULL')
    op.create_table(
        'task',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('creditor_id', sa.Integer(), nullable=False),
        sa.Column('debtor_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('step_code', sa.String(length=32), nullable=True),
        sa.Column('due', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('assigned_to_id', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('call')", name=op.f('ck_task_kind')),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f('ck_task_status')),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('reached', 'promise', 'no_answer', 'wrong_number')",
                           name=op.f('ck_task_outcome')),
        sa.CheckConstraint("(status = 'done') = (closed_at IS NOT NULL)", name=op.f('ck_task_closed')),
        sa.ForeignKeyConstraint(['assigned_to_id'], ['creditor_user.id'],
                                name=op.f('fk_task_assigned_to_id_creditor_user'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['closed_by_id'], ['creditor_user.id'],
                                name=op.f('fk_task_closed_by_id_creditor_user'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['creditor_id'], ['creditor.id'], name=op.f('fk_task_creditor_id_creditor')),
        sa.ForeignKeyConstraint(['debtor_id'], ['debtor.id'], name=op.f('fk_task_debtor_id_debtor')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_task')),
        sa.UniqueConstraint('debtor_id', 'kind', 'due', name=op.f('uq_task_debtor_id_kind_due')),
    )
    op.create_index('ix_task_creditor_status', 'task', ['creditor_id', 'status'], unique=False)
    op.create_table(
        'task_invoice',
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('reminder_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], name=op.f('fk_task_invoice_invoice_id_invoice')),
        sa.ForeignKeyConstraint(['reminder_id'], ['reminder.id'], name=op.f('fk_task_invoice_reminder_id_reminder')),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], name=op.f('fk_task_invoice_task_id_task'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('task_id', 'invoice_id', name=op.f('pk_task_invoice')),
        sa.UniqueConstraint('reminder_id', name=op.f('uq_task_invoice_reminder_id')),
    )


def downgrade():
    op.drop_table('task_invoice')
    op.drop_index('ix_task_creditor_status', table_name='task')
    op.drop_table('task')
    with op.batch_alter_table('debtor', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_debtor_owner_id_creditor_user'), type_='foreignkey')
        batch_op.drop_column('owner_id')
    # Rows only this revision allows go back to what the older schema can hold: a call waiting
    # for its outcome was planned, a call or SMS step goes by e-mail.
    op.execute("UPDATE reminder SET status = 'planned' WHERE status = 'awaiting_call'")
    op.execute("UPDATE dunning_step SET channel = 'email' WHERE channel IN ('sms', 'call')")
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_reminder_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_reminder_status'), f"status IN ({STATUSES})")
    with op.batch_alter_table('dunning_step', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_dunning_step_channel'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_dunning_step_channel'), "channel IN ('email', 'letter')")
        batch_op.drop_column('retired_at')
