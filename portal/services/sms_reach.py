"""Whether a plan's SMS steps reach a debtor, and if not why (CONTRACT §9: a debtor without a
valid mobile number, or opted out, gets the step by e-mail), as the back office says it."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from .. import gateways
from ..domain import phones
from ..extensions import db
from ..models import Debtor, Event


@dataclass
class Reach:
    number: str | None            # the number as people write it, when it is one
    #: why SMS steps go by e-mail, in order: not_configured, no_number, invalid, landline, opted_out
    reasons: list[str] = field(default_factory=list)
    opted_out_at: datetime | None = None

    @property
    def reaches(self) -> bool:
        return not self.reasons


def of(debtor: Debtor) -> Reach:
    reach = Reach(None)
    if gateways.sms() is None:
        reach.reasons.append("not_configured")
    if not debtor.phone:
        reach.reasons.append("no_number")
    else:
        try:
            reach.number = phones.display(debtor.phone)
            if not phones.is_mobile(debtor.phone):
                reach.reasons.append("landline")
        except phones.InvalidPhone:
            reach.number = debtor.phone
            reach.reasons.append("invalid")
    if debtor.sms_opt_out:
        reach.reasons.append("opted_out")
        reach.opted_out_at = db.session.scalar(select(func.max(Event.at)).where(
            Event.debtor_id == debtor.id, Event.type == "sms.opted_out"))
    return reach
