"""issue 14: a courtesy notice already sent counts as rung 0 with its day

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 17:10:00

Since this release a sent courtesy notice writes its day into invoice.rung_sent_on (rung 0), so
the planner no longer weighs every invoice in the courtesy window each day. Invoices whose notice
went out before it have no day yet: they are still planned right, only slowly, until they reach
rung 1. This fills the day from the reminders sent (their dunning day). Data only: the downgrade
leaves the days, which the older code reads as it always did.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# A reminder before the due date: no rung of its own, not the thank-you (services/ladder.ladder_rung).
_COURTESY_SENT = ("FROM reminder r WHERE r.invoice_id = invoice.id AND r.status = 'sent' "
                  "AND r.rung IS NULL AND r.step_code <> 'thank_you'")


def upgrade():
    op.execute(f"UPDATE invoice SET rung_sent_on = (SELECT max(r.dunning_date) {_COURTESY_SENT}) "
               f"WHERE rung_reached = 0 AND rung_sent_on IS NULL AND EXISTS (SELECT 1 {_COURTESY_SENT})")


def downgrade():
    pass
