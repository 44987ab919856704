"""The entities of a group sharing their users: which creditors a back-office user may act for,
adding a user to another creditor, and the creditor a session works on. A user's own
`creditor_id` is where it signs in; every creditor it may switch to has a CreditorMembership row
(its own included, since migration 0018), and nothing else ever opens another creditor's data."""
from __future__ import annotations

from sqlalchemy import or_, select

from ..extensions import db
from ..models import Creditor, CreditorMembership, CreditorUser
from . import Conflict, NotFound, events, tenants

#: the signed session's key holding the creditor the back office works on (set at sign-in)
SESSION_KEY = "creditor_id"


def creditors_of(user: CreditorUser) -> list[Creditor]:
    """Every creditor `user` may act for, its own first, then by name."""
    rows = db.session.scalars(
        select(Creditor).where(or_(Creditor.id == user.creditor_id,
                                   Creditor.id.in_(select(CreditorMembership.creditor_id)
                                                   .where(CreditorMembership.user_id == user.id))))
        .order_by(Creditor.name, Creditor.id)).all()
    return sorted(rows, key=lambda c: c.id != user.creditor_id)


def member_creditor(user: CreditorUser, creditor_id) -> Creditor | None:
    """The creditor `creditor_id` names if `user` may act for it; None otherwise (no such
    creditor, no membership, or not an id at all)."""
    if isinstance(creditor_id, str):
        creditor_id = int(creditor_id) if creditor_id.isascii() and creditor_id.isdigit() and len(creditor_id) < 19 \
            else None
    if not isinstance(creditor_id, int) or isinstance(creditor_id, bool):
        return None
    if creditor_id != user.creditor_id and db.session.get(CreditorMembership, (user.id, creditor_id)) is None:
        return None
    return db.session.get(Creditor, creditor_id)


def active_creditor(user: CreditorUser, session_creditor_id) -> Creditor:
    """The creditor a back-office request works on: the one the session was switched to, while
    the user still belongs to it; its own otherwise (a membership taken away ends the switch)."""
    if session_creditor_id is not None and session_creditor_id != user.creditor_id:
        creditor = member_creditor(user, session_creditor_id)
        if creditor is not None:
            return creditor
    return user.creditor


def switch(user: CreditorUser, creditor_id) -> Creditor:
    """The creditor the user switches to, with `user.switched_creditor` recorded in the log of
    the creditor it goes to; NotFound (nothing recorded) when it does not belong to it."""
    creditor = member_creditor(user, creditor_id)
    if creditor is None:
        raise NotFound("no such creditor")
    events.record("user.switched_creditor", creditor_id=creditor.id, actor="creditor", user=user.email)
    db.session.commit()
    return creditor


def add_membership(user: CreditorUser, creditor: Creditor, *, actor: str) -> bool:
    """Let `user` act for `creditor` (in the caller's transaction); False if it already could."""
    if db.session.get(CreditorMembership, (user.id, creditor.id)) is not None:
        return False
    db.session.add(CreditorMembership(user_id=user.id, creditor_id=creditor.id))
    events.record("creditor_user.added", creditor_id=creditor.id, actor=actor, user=user.email)
    return True


def add_user(creditor: Creditor, email: str, password: str | None = None, *, actor: str = "cli") -> CreditorUser:
    """Give `email` access to `creditor`: an existing user gets a membership; a new e-mail gets a
    user of its own (this creditor being its own) with `password`, and its membership."""
    user = tenants.user_by_email(email)
    if user is None:
        if password is None:
            raise NotFound("no user with this e-mail: give a password to create one", "email")
        user = tenants.new_user(creditor, email, password)
        events.record("creditor_user.added", creditor_id=creditor.id, actor=actor, user=user.email)
    elif not add_membership(user, creditor, actor=actor):
        raise Conflict("this user already belongs to this creditor", "email")
    db.session.commit()
    return user


def several_creditors(email: str) -> list[int] | None:
    """The ids of the creditors a user e-mail names when it names more than one; None when it
    names one at most (the CLI then takes the e-mail as the creditor's name)."""
    user = tenants.user_by_email(email)
    if user is None:
        return None
    ids = [c.id for c in creditors_of(user)]
    return sorted(ids) if len(ids) > 1 else None


def users_of(creditor_id: int) -> list[CreditorUser]:
    """Every user who may act for this creditor (its own and those of its group), by e-mail: the
    people a debtor's owner, a note's mention or a notice may name."""
    members = select(CreditorMembership.user_id).where(CreditorMembership.creditor_id == creditor_id)
    return list(db.session.scalars(select(CreditorUser).where(or_(CreditorUser.creditor_id == creditor_id,
                                                                  CreditorUser.id.in_(members)))
                                   .order_by(CreditorUser.email)))
