"""outbox: a letter for the print queue keeps its HTML as composed; its PDF is made when printed

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_message") as batch:
        batch.add_column(sa.Column("letter_html", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("outbox_message") as batch:
        batch.drop_column("letter_html")
