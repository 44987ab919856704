"""What the back office says about SMS: whether a debtor's SMS steps reach it (the partial
creditor/_debtor_sms.html asks `sms_reach(debtor)`)."""
from __future__ import annotations

from ..services import sms_reach
from .blueprint import bp


@bp.context_processor
def _sms_reach():
    # A function: only a page that shows the partial looks anything up.
    return {"sms_reach": sms_reach.of}
