"""Portal links: signed (itsdangerous), bound to one debtor, expiring, revocable. A link may also
have a short random code (printed letters), opening the same row under the same rules."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import bindparam, select

from ..extensions import db
from ..models import Debtor, PortalLink, PortalSession, utcnow
from . import NotFound, events

SALT = "relance.portal-link.v1"


class LinkRefused(Exception):
    """Tampered, expired, revoked or unknown: the page says nothing more to the visitor.
    `renewable`: the link is genuine, only expired or revoked (its page may offer a fresh one)."""

    def __init__(self, renewable: bool = False):
        super().__init__()
        self.renewable = renewable


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def max_age() -> timedelta:
    return timedelta(days=current_app.config["PORTAL_LINK_MAX_AGE_DAYS"])


@dataclass
class IssuedLink:
    link: PortalLink
    url: str
    #: PORTAL_BASE_URL/l/<short code>, for letters (typed by hand from paper); None unless asked
    short_url: str | None = None


#: short codes: no 0/O, 1/l/I to misread on paper; 10 characters = 31^10, about 2^49
SHORT_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
SHORT_LENGTH = 10
_SHORT_CODE = re.compile(f"[{SHORT_ALPHABET}]{{{SHORT_LENGTH}}}")


@dataclass
class OpenedLink:
    link: PortalLink
    dispute_id: int | None  # the dispute thread the link was sent about: where it lands
    session_id: int  # the portal session it started (PortalSession), named by the session cookie


def issue(debtor: Debtor, *, issued_by: str, invoice_numbers: list[str] | None = None,
          dispute_id: int | None = None, message_id: int | None = None, short: bool = False,
          commit: bool = True, flush: bool = True) -> IssuedLink:
    """A new link for `debtor`; it lands on the portal's home (with `invoice_numbers` preselected
    for payment) or, given `dispute_id`, on that dispute's thread (signed into the token).
    `message_id`: the message it is sent in (the portal shows what that message asked);
    `short`: also a short code resolving under /l/ (printed letters). `flush=False` (composing,
    which writes a batch of links in one statement): the link waits for the caller's flush, and
    the caller then records its event with record_issued."""
    link = PortalLink(creditor_id=debtor.creditor_id, debtor_id=debtor.id, nonce=secrets.token_hex(16),
                      invoice_numbers=invoice_numbers or None, issued_by=issued_by, message_id=message_id,
                      expires_at=utcnow() + max_age())
    if short:
        link.short_code = "".join(secrets.choice(SHORT_ALPHABET) for _ in range(SHORT_LENGTH))
    db.session.add(link)
    # The token carries the nonce (unique), not the row's id: it can be made before the INSERT.
    payload = {"n": link.nonce}
    if dispute_id is not None:
        payload["d"] = dispute_id
    base = current_app.config["PORTAL_BASE_URL"]
    issued = IssuedLink(link, f"{base}/l/{_serializer().dumps(payload)}",
                        f"{base}/l/{link.short_code}" if short else None)
    if flush:
        db.session.flush([link])
        record_issued(issued)
    if commit:
        db.session.commit()
    return issued


def record_issued(issued: IssuedLink) -> None:
    """The link's event, once its row has an id."""
    link = issued.link
    events.record("link.issued", creditor_id=link.creditor_id, debtor_id=link.debtor_id, actor=link.issued_by,
                  link_id=link.id, expires_at=link.expires_at.isoformat())


def open_token(token: str, *, ip: str | None = None) -> OpenedLink:
    """Check a signed token or a short code and record the opening; raise LinkRefused for anything
    not exactly right. Both open the same row, under the same expiry and revocation rules."""
    found = _named(token, check_age=True)
    if found is None:
        raise LinkRefused(renewable=named_by(token) is not None)
    return _open(*found)


def named_by(token: str) -> PortalLink | None:
    """The link a genuine token or short code names, however old or revoked (a dead link's page
    offers to send a fresh one); None for a bad signature, a malformed payload or no such row."""
    found = _named(token, check_age=False)
    return found[0] if found else None


def _named(token: str, *, check_age: bool) -> tuple[PortalLink, int | None] | None:
    if not token or len(token) > 500:
        return None
    # Typed by hand from paper, a code may come back in capitals (phones capitalise); the alphabet
    # has one case, so folding it loses nothing. A signed token always contains dots: never a code.
    if _SHORT_CODE.fullmatch(token.lower()):
        link = db.session.scalar(select(PortalLink).where(PortalLink.short_code == token.lower()))
        return None if link is None else (link, None)
    try:
        if check_age:
            payload = _serializer().loads(token, max_age=int(max_age().total_seconds()))
        else:  # the signature still checked; only the age is not
            genuine, payload = _serializer().loads_unsafe(token)
            if not genuine:
                return None
    except BadData:
        return None
    if (not isinstance(payload, dict) or not isinstance(payload.get("n"), str)
            or not isinstance(payload.get("l", 0), int) or not isinstance(payload.get("d", 0), int)):
        return None
    if "l" in payload:  # tokens issued before 2026-12 name the row and carry its nonce
        link = db.session.get(PortalLink, payload["l"])
    else:
        link = db.session.scalar(select(PortalLink).where(PortalLink.nonce == payload["n"]))
    if link is None or not secrets.compare_digest(link.nonce, payload["n"]):
        return None
    return link, payload.get("d")


def _open(link: PortalLink, dispute_id: int | None) -> OpenedLink:
    now = utcnow()
    if link.revoked_at is not None or link.expires_at <= now:
        raise LinkRefused(renewable=True)
    link.first_opened_at = link.first_opened_at or now
    link.last_opened_at = now
    link.open_count = (link.open_count or 0) + 1
    started = PortalSession(link_id=link.id, started_at=now)
    db.session.add(started)
    events.record("portal.opened", creditor_id=link.creditor_id, debtor_id=link.debtor_id, actor="debtor",
                  link_id=link.id, first=link.open_count == 1)
    db.session.commit()
    return OpenedLink(link, dispute_id, started.id)


#: Whether a portal session still stands: not signed out, and its link (that debtor's) neither
#: revoked nor expired. Checked on the server at every request (account.live_version), so a copy
#: of the cookie is worth no more than the session it was copied from. Built once.
SESSION_ALIVE = (select(PortalSession.id).join(PortalLink, PortalLink.id == PortalSession.link_id)
                  .where(PortalSession.id == bindparam("session_id"), PortalSession.ended_at.is_(None),
                         PortalLink.debtor_id == bindparam("debtor_id"), PortalLink.revoked_at.is_(None),
                         PortalLink.expires_at > bindparam("now")))


def end_session(session_id: int) -> None:
    """The debtor signed out: the session is over on the server, whichever browser shows its cookie."""
    ended = db.session.get(PortalSession, session_id)
    if ended is not None and ended.ended_at is None:
        ended.ended_at = utcnow()
        db.session.commit()


def revoke(creditor_id: int, link_id: int, actor: str = "creditor") -> PortalLink:
    link = db.session.scalar(select(PortalLink).where(PortalLink.id == link_id,
                                                      PortalLink.creditor_id == creditor_id))
    if link is None:
        raise NotFound("no such link")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        events.record("link.revoked", creditor_id=creditor_id, debtor_id=link.debtor_id, actor=actor,
                      link_id=link.id)
        db.session.commit()
    return link


def for_debtor(creditor_id: int, debtor_id: int) -> list[PortalLink]:
    return list(db.session.scalars(select(PortalLink).where(
        PortalLink.creditor_id == creditor_id, PortalLink.debtor_id == debtor_id).order_by(PortalLink.id.desc())))
