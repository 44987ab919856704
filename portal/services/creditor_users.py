"""The back office's users signing in: the session's user, and a login recorded as an event."""
from __future__ import annotations

from ..extensions import db
from ..models import CreditorUser
from . import events, tenants


def for_session(user_id: str) -> CreditorUser | None:
    """The user a login session names (flask-login keeps the id as text)."""
    return db.session.get(CreditorUser, int(user_id)) if user_id.isdigit() else None


def log_in(email: str, password: str) -> CreditorUser | None:
    """The user these credentials belong to, with `user.logged_in` recorded; None if they are wrong."""
    user = tenants.authenticate(email, password)
    if user is None:
        return None
    events.record("user.logged_in", creditor_id=user.creditor_id, actor="creditor", user=user.email)
    db.session.commit()
    return user
