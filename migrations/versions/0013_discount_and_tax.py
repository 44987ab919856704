"""issue 17: early-payment discount and the invoice's tax amounts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 16:00:00

An invoice may carry an early-payment discount (a percentage of its amount, available until a
day, CONTRACT §4/§10), both or neither. Its amount excluding tax and its tax are kept where known
(Factur-X gives them) for the summary PDF; absent from CSV and API input, so nullable.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_percent', sa.Numeric(5, 2), nullable=True))
        batch_op.add_column(sa.Column('discount_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('amount_excl_tax', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('tax_amount', sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint(
            'discount_both', '(discount_percent IS NULL) = (discount_until IS NULL)')
        batch_op.create_check_constraint(
            'discount_range', 'discount_percent IS NULL OR (discount_percent > 0 AND discount_percent < 100)')


def downgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_constraint('discount_range', type_='check')
        batch_op.drop_constraint('discount_both', type_='check')
        batch_op.drop_column('tax_amount')
        batch_op.drop_column('amount_excl_tax')
        batch_op.drop_column('discount_until')
        batch_op.drop_column('discount_percent')
