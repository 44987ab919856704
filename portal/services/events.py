"""The append-only event log: written by every service, read by the feed and the API."""
from __future__ import annotations

from sqlalchemy import insert, select

from ..extensions import db
from ..models import Debtor, Event, Invoice, utcnow


def record(type: str, *, creditor_id: int, actor: str, debtor_id: int | None = None,
           invoice_id: int | None = None, **data) -> Event:
    """Add an event to the current transaction; the caller's commit makes it durable."""
    event = Event(type=type, creditor_id=creditor_id, actor=actor, debtor_id=debtor_id,
                  invoice_id=invoice_id, data=data)
    db.session.add(event)
    return event


def record_many(rows: list[dict], connection=None) -> None:
    """Events as dicts (type, creditor_id, actor, debtor_id, invoice_id, data) in one INSERT in
    the current transaction (of `connection`, else the session's), without ORM objects: for the
    hot paths (a webhook's payment, the outbox's sends)."""
    if rows:
        now = utcnow()
        (connection or db.session.connection()).execute(
            _INSERT, [{"debtor_id": None, "invoice_id": None, "at": now, **r} for r in rows])


_INSERT = insert(Event.__table__)  # built once: SQLAlchemy then only looks up its compiled form


def page(creditor_id: int, after: int = 0, limit: int = 100, debtor_id: int | None = None):
    """Events oldest first after an id, with the debtor's ref and the invoice's number."""
    q = (select(Event, Debtor.ref, Invoice.number, Debtor.name)
         .outerjoin(Debtor, Debtor.id == Event.debtor_id)
         .outerjoin(Invoice, Invoice.id == Event.invoice_id)
         .where(Event.creditor_id == creditor_id, Event.id > after)
         .order_by(Event.id).limit(limit))
    if debtor_id is not None:
        q = q.where(Event.debtor_id == debtor_id)
    return named(db.session.execute(q).all())


def named(rows) -> list[tuple]:
    """(event, debtor ref, invoice number) rows, the debtor's name riding on the event (not a fourth
    column: the feed templates and the API unpack three), so the feed's sentences name the debtor."""
    out = []
    for event, ref, number, name in rows:
        event.debtor_name = name
        out.append((event, ref, number))
    return out


def latest(creditor_id: int, limit: int = 50, debtor_id: int | None = None, invoice_id: int | None = None):
    """Newest first, for the back office."""
    q = (select(Event, Debtor.ref, Invoice.number, Debtor.name)
         .outerjoin(Debtor, Debtor.id == Event.debtor_id)
         .outerjoin(Invoice, Invoice.id == Event.invoice_id)
         .where(Event.creditor_id == creditor_id)
         .order_by(Event.id.desc()).limit(limit))
    if debtor_id is not None:
        q = q.where(Event.debtor_id == debtor_id)
    if invoice_id is not None:
        q = q.where(Event.invoice_id == invoice_id)
    return named(db.session.execute(q).all())


def as_json(event: Event, debtor_ref: str | None, invoice_number: str | None) -> dict:
    out = {"id": event.id, "type": event.type, "at": event.at.isoformat(), "debtor_ref": debtor_ref}
    if invoice_number is not None:
        out["invoice_number"] = invoice_number
    out["data"] = event.data or {}
    return out
