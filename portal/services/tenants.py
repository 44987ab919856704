"""Creditors, their users and their API keys."""
from __future__ import annotations

import hashlib
import re
import secrets
from functools import cache

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import ApiKey, Creditor, CreditorMembership, CreditorUser, utcnow
from . import Conflict, Invalid
from . import events
from .checks import UNSTORABLE, amount_of, check_email, check_name, check_storable, check_timezone, currency_of

API_KEY_PREFIX = "rl_live_"


@cache
def _dummy_hash() -> str:
    # A hash to spend the same time on unknown e-mails as on wrong passwords; made on first use,
    # not at import (scrypt costs ~0.1 s, which every `dunning run` would pay for nothing).
    return generate_password_hash("not-a-real-password")


def create_creditor(*, name: str, email: str, password: str, currency: str = "EUR",
                    timezone: str = "Europe/Paris", language: str = "fr", **details) -> tuple[Creditor, str]:
    """A creditor, its first user (same e-mail) and an API key, returned in clear once. When the
    e-mail is an existing user's and `password` is that user's, the new creditor is one more
    entity of its group: the user gets a membership of it (and keeps signing in to its own)."""
    name = check_name(name, "name")
    email = check_email(email)
    existing = user_by_email(email)
    if existing is not None and authenticate(email, password) is None:
        raise Conflict("a user with this e-mail already exists: give that user's password to add it "
                       "to the new creditor", "email")
    hashed = None if existing is not None else password_hash(password)
    currency = currency_of(currency)
    if language not in ("fr", "en"):
        raise Invalid("language must be fr or en", "language")
    if details.get("iban"):
        details["iban"] = normalise_iban(details["iban"])
    if details.get("bic"):
        details["bic"] = normalise_bic(details["bic"])
    creditor = Creditor(name=name, email=email, currency=currency, timezone=check_timezone(timezone),
                        language=language, **details)
    db.session.add(creditor)
    db.session.flush()
    if existing is None:
        new_user(creditor, email, hashed=hashed)
    else:
        db.session.add(CreditorMembership(user_id=existing.id, creditor_id=creditor.id))
    key = _new_api_key(creditor.id, "default")
    events.record("creditor.created", creditor_id=creditor.id, actor="system", name=name)
    if existing is not None:
        events.record("creditor_user.added", creditor_id=creditor.id, actor="system", user=existing.email)
    db.session.commit()
    return creditor, key


def new_user(creditor: Creditor, email: str, password: str | None = None, *, hashed: str | None = None) -> CreditorUser:
    """A back-office user whose own creditor is `creditor`, with its membership (every creation
    of a user goes through here, so no user lacks the row for its own creditor); caller commits."""
    email = check_email(email).lower()
    if db.session.scalar(select(CreditorUser.id).where(CreditorUser.email == email)):
        raise Conflict("a user with this e-mail already exists", "email")
    user = CreditorUser(creditor_id=creditor.id, email=email, password_hash=hashed or password_hash(password))
    db.session.add(user)
    db.session.flush()
    db.session.add(CreditorMembership(user_id=user.id, creditor_id=creditor.id))
    return user


def password_hash(password: str) -> str:
    """The stored hash of a new password, which must have 8 characters at least."""
    if not isinstance(password, str) or len(password) < 8:
        raise Invalid("password must have at least 8 characters", "password")
    return generate_password_hash(password)


def normalise_iban(value: str) -> str:
    from schwifty import IBAN  # imported late: its bank registry loads in ~20 ms, for settings and sign-up only

    try:
        return str(IBAN(value).compact)
    except Exception:
        raise Invalid("invalid IBAN", "iban") from None


def normalise_bic(value: str) -> str:
    from schwifty import BIC  # imported late, as in normalise_iban

    try:
        return str(BIC(value).compact)
    except Exception:
        raise Invalid("invalid BIC", "bic") from None


def user_by_email(email: str) -> CreditorUser | None:
    email = (email or "").strip().lower()
    if UNSTORABLE.search(email):  # a NUL would make PostgreSQL refuse the query itself
        return None
    return db.session.scalar(select(CreditorUser).where(CreditorUser.email == email))


def authenticate(email: str, password: str) -> CreditorUser | None:
    user = user_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_api_key(creditor_id: int, label: str | None) -> str:
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiKey(creditor_id=creditor_id, prefix=key[:14], key_hash=_hash(key), label=label))
    return key


def create_api_key(creditor_id: int, label: str | None, actor: str = "creditor") -> str:
    key = _new_api_key(creditor_id, check_storable((label or "").strip()[:100], "label") or None)
    events.record("api_key.created", creditor_id=creditor_id, actor=actor, prefix=key[:14])
    db.session.commit()
    return key


def revoke_api_key(creditor_id: int, key_id: int) -> bool:
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.creditor_id == creditor_id))
    if key is None or key.revoked_at:
        return False
    key.revoked_at = utcnow()
    events.record("api_key.revoked", creditor_id=creditor_id, actor="creditor", prefix=key.prefix)
    db.session.commit()
    return True


def api_keys(creditor_id: int) -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).where(ApiKey.creditor_id == creditor_id).order_by(ApiKey.id)))


def creditor_for_api_key(key: str) -> Creditor | None:
    if not key or not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        return None
    row = db.session.execute(
        select(ApiKey, Creditor).join(Creditor, Creditor.id == ApiKey.creditor_id)
        .where(ApiKey.key_hash == _hash(key), ApiKey.revoked_at.is_(None))).first()
    return row[1] if row else None


def creditor_by_email(email: str) -> Creditor | None:
    """The CLI names a creditor by its login e-mail (or its contact e-mail): the user's own
    creditor (memberships.several_creditors tells when the e-mail names more than one)."""
    email = (email or "").strip().lower()
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.email == email))
    if user:
        return db.session.get(Creditor, user.creditor_id)
    return db.session.scalar(select(Creditor).where(db.func.lower(Creditor.email) == email).limit(1))


def set_partial_minimum(creditor: Creditor, value, user: str) -> None:
    """Allow debtors to pay part of one invoice by card, from this amount (blank = whole invoices only)."""
    raw = str(value or "").strip().replace(",", ".")
    minimum = None if raw == "" else amount_of(raw, creditor.currency, "partial_payment_min")
    if minimum is not None and minimum <= 0:
        raise Invalid("the minimum must be positive", "partial_payment_min")
    creditor.partial_payment_min = minimum
    events.record("creditor.payment_settings_updated", creditor_id=creditor.id, actor="creditor", user=user,
                  partial_payment_min=minimum)
    db.session.commit()


#: the earliest and latest a day's reminders may start, creditor's time: a reminder that lands at
#: night reads as harassment, and one planned after 20:00 would meet the next day's run.
DUNNING_TIMES = ("06:00", "20:00")


def set_dunning_time(creditor: Creditor, value, user: str) -> bool:
    """When each day's run starts ("HH:MM", the creditor's time zone); True when it changed."""
    raw = str(value or "").strip()
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", raw) or not DUNNING_TIMES[0] <= raw <= DUNNING_TIMES[1]:
        raise Invalid(f"a time between {DUNNING_TIMES[0]} and {DUNNING_TIMES[1]}, as HH:MM", "dunning_time")
    if creditor.dunning_time == raw:
        return False
    creditor.dunning_time = raw
    events.record("creditor.dunning_time_changed", creditor_id=creditor.id, actor="creditor", user=user,
                  dunning_time=raw)
    db.session.commit()
    return True
