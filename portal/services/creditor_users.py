"""The back office's users signing in and out: the session's user, a login recorded as an event,
and the session generation that a sign-out or a new password moves on."""
from __future__ import annotations

from ..extensions import db
from ..models import CreditorUser
from . import NotFound, events, tenants


def for_session(session_id: str) -> CreditorUser | None:
    """The user a login session names, as CreditorUser.get_id wrote it ("<id>:<generation>"); None
    when the generation has moved on since (signed out, password changed) or the text is not one."""
    user_id, _, generation = session_id.partition(":")
    if not (user_id.isdigit() and generation.isdigit() and len(session_id) < 40):
        return None
    user = db.session.get(CreditorUser, int(user_id))
    return user if user is not None and user.session_generation == int(generation) else None


def log_out(user: CreditorUser) -> None:
    """End every session of `user`: the one signing out and any copy of its cookie elsewhere."""
    _end_sessions(user)
    events.record("user.logged_out", creditor_id=user.creditor_id, actor="creditor", user=user.email)
    db.session.commit()


def set_password(email: str, password: str, *, actor: str = "cli") -> CreditorUser:
    """A new password for the user with this e-mail; every session it had is over."""
    user = tenants.user_by_email(email)
    if user is None:
        raise NotFound("no user with this e-mail")
    user.password_hash = tenants.password_hash(password)
    _end_sessions(user)
    events.record("user.password_changed", creditor_id=user.creditor_id, actor=actor, user=user.email)
    db.session.commit()
    return user


def _end_sessions(user: CreditorUser) -> None:
    # In SQL, so two sign-outs at once both move it on.
    user.session_generation = CreditorUser.session_generation + 1


def log_in(email: str, password: str) -> CreditorUser | None:
    """The user these credentials belong to, with `user.logged_in` recorded; None if they are wrong."""
    user = tenants.authenticate(email, password)
    if user is None:
        return None
    events.record("user.logged_in", creditor_id=user.creditor_id, actor="creditor", user=user.email)
    db.session.commit()
    return user


def of_creditor(creditor_id: int) -> list[CreditorUser]:
    """The users who work on this creditor's debtors (owners, colleagues to mention), by e-mail:
    its own and those of its group (memberships.users_of)."""
    from .memberships import users_of

    return users_of(creditor_id)


def of_creditor_by_id(creditor_id: int, user_id) -> CreditorUser | None:
    """One of of_creditor's users by id; None for anyone else's (or no such user)."""
    return next((u for u in of_creditor(creditor_id) if u.id == user_id), None)
