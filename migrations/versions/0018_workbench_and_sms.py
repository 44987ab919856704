"""issues 18 and 19: the credit controller's workbench and SMS

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 19:05:38

A user may belong to several creditors (the entities of a group): one membership row per
creditor it may switch to, its own included (backfilled). Dunning may be paused by a person for a
debtor or one invoice, with a reason and an end date; notes on a debtor mention colleagues. A
debtor has an accounts-payable contact and may opt out of SMS; an SMS in the outbox keeps
Twilio's id for it and the last delivery status reported.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('creditor_membership',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditor.id'], name=op.f('fk_creditor_membership_creditor_id_creditor')),
    sa.ForeignKeyConstraint(['user_id'], ['creditor_user.id'], name=op.f('fk_creditor_membership_user_id_creditor_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'creditor_id', name=op.f('pk_creditor_membership'))
    )
    with op.batch_alter_table('creditor_membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_creditor_membership_creditor_id'), ['creditor_id'], unique=False)
    op.execute("INSERT INTO creditor_membership (user_id, creditor_id, created_at) "
               "SELECT id, creditor_id, created_at FROM creditor_user")

    op.create_table('debtor_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('mentions', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['creditor_user.id'], name=op.f('fk_debtor_note_author_id_creditor_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditor.id'], name=op.f('fk_debtor_note_creditor_id_creditor')),
    sa.ForeignKeyConstraint(['debtor_id'], ['debtor.id'], name=op.f('fk_debtor_note_debtor_id_debtor')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_debtor_note'))
    )
    with op.batch_alter_table('debtor_note', schema=None) as batch_op:
        batch_op.create_index('ix_debtor_note_debtor_id', ['debtor_id', 'id'], unique=False)

    op.create_table('dunning_pause',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('creditor_id', sa.Integer(), nullable=False),
    sa.Column('debtor_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('until', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=254), nullable=True),
    sa.ForeignKeyConstraint(['creditor_id'], ['creditor.id'], name=op.f('fk_dunning_pause_creditor_id_creditor')),
    sa.ForeignKeyConstraint(['debtor_id'], ['debtor.id'], name=op.f('fk_dunning_pause_debtor_id_debtor')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], name=op.f('fk_dunning_pause_invoice_id_invoice')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dunning_pause'))
    )
    with op.batch_alter_table('dunning_pause', schema=None) as batch_op:
        batch_op.create_index('ix_dunning_pause_debtor_id', ['debtor_id', 'until'], unique=False)

    with op.batch_alter_table('debtor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ap_contact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sms_opt_out', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_message_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=20), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_outbox_message_provider_message_id'), ['provider_message_id'])



def downgrade():
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_outbox_message_provider_message_id'), type_='unique')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('provider_message_id')

    with op.batch_alter_table('debtor', schema=None) as batch_op:
        batch_op.drop_column('sms_opt_out')
        batch_op.drop_column('ap_contact')

    with op.batch_alter_table('dunning_pause', schema=None) as batch_op:
        batch_op.drop_index('ix_dunning_pause_debtor_id')

    op.drop_table('dunning_pause')
    with op.batch_alter_table('debtor_note', schema=None) as batch_op:
        batch_op.drop_index('ix_debtor_note_debtor_id')

    op.drop_table('debtor_note')
    with op.batch_alter_table('creditor_membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_creditor_membership_creditor_id'))

    op.drop_table('creditor_membership')
