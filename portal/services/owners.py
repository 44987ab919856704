"""The collector in charge of a debtor (Debtor.owner_id): one of the creditor's users, who gets
its call tasks and sees it under "mine" in the debtors list."""
from __future__ import annotations

from ..extensions import db
from ..models import CreditorUser, Debtor
from . import Invalid, creditor_users, events


def assign(debtor: Debtor, owner_id: int | None, *, user: str) -> CreditorUser | None:
    """Put `owner_id` (None: nobody) in charge of `debtor`; `user` is who decided. A user who
    does not work for the debtor's creditor is refused; the same owner again changes nothing."""
    owner = None
    if owner_id is not None:
        owner = creditor_users.of_creditor_by_id(debtor.creditor_id, owner_id)
        if owner is None:
            raise Invalid("owner must be one of the creditor's users", "owner")
    if debtor.owner_id == owner_id:
        return owner
    previous = db.session.get(CreditorUser, debtor.owner_id) if debtor.owner_id else None
    debtor.owner_id = owner_id
    events.record("debtor.owner_changed", creditor_id=debtor.creditor_id, debtor_id=debtor.id, actor="creditor",
                  user=user, owner=owner.email if owner else None, previous=previous.email if previous else None)
    db.session.commit()
    return owner
