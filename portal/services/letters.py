"""Letters (PDF): the formal notice and reminder letters a creditor prints, posts or sends.

A letter prints one Demand (services/demand.py) and nothing of its own: its lines, its one total
(in the demand sentence, the table's total and the EPC QR code), its reference and its deadline.
Everything else on the page is true of how it leaves: the delivery it states is the one chosen,
the reminders it recalls are the ones sent, the law it cites is the debtor's (domain/legal.py).

Layout: A4, the debtor's name and address placed for a French window envelope (DL, window on the
right: a frame 85 x 33 mm, 110 mm from the left edge and 55 mm from the top, as NF Z10-011 and
La Poste place it), every date in the long format of the debtor's language.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask import render_template
from flask_babel import force_locale
from sqlalchemy import func, select, update
from sqlalchemy.orm import defer

from ..domain import legal
from ..domain.giro import qr_svg_data_uri
from ..domain.long_dates import dates_after_noun, long_date
from ..domain.money import format_money
from ..domain.references import format_reference
from ..extensions import db
from ..domain.calendar import today_for, today_in
from ..models import Creditor, Debtor, DunningStep, Invoice, OutboxMessage, utcnow
from . import Conflict, Invalid, NotFound, documents, events, transfer
from .demand import Demand

#: how the letter leaves, as the creditor chose it at approval
DELIVERIES = ("registered", "letter", "email")
LANGUAGES = ("fr", "en")
#: characters of the portal link that fit the text width on one line at the body size (monospace)
LINK_FITS = 80


@dataclass(frozen=True)
class Row:
    """One line of the items table."""
    kind: str  # invoice | discount | charges_item | interest | indemnity
    number: str  # the invoice's number (for charges, the invoice they were claimed on)
    due: str  # long date, or "" for charges
    days_late: int | None
    amount: str


def is_formal_notice(kind: str, step: DunningStep | None) -> bool:
    return kind == "formal_notice" or (step is not None and step.tone == "formal")


def _lines(text: str | None) -> list[str]:
    return [" ".join(line.split()) for line in (text or "").splitlines() if line.strip()]


def _town(address: str | None) -> str | None:
    """The town of a French address ("12 rue des Lilas, 69003 Lyon" -> "Lyon"), for "Lyon, le …";
    None when no postcode and town can be read (the letter then says "Le …", nothing guessed)."""
    lines = _lines(address)
    if not lines:
        return None
    match = re.search(r"\b\d{5}\s+([^,\d]+?)(?:\s+CEDEX\b.*)?$", lines[-1].split(",")[-1].strip(), re.I)
    if not match:
        return None
    town = match.group(1).strip()
    return town.title() if town.isupper() else town


def recipient_lines(debtor: Debtor) -> list[str]:
    """The window's lines: the debtor's name, then its postal address as recorded (the name is not
    repeated when the address already starts with it). No address: the name alone."""
    address = _lines(debtor.address)
    if address and address[0].casefold() == " ".join(debtor.name.split()).casefold():
        address = address[1:]
    return [debtor.name, *address]


def _charged_number(line_invoice: Invoice, demand: Demand) -> str:
    """The number of the invoice a charges item was claimed on."""
    target = line_invoice.charged_invoice_id
    for line in demand.lines:
        if line.invoice.id == target:
            return line.invoice.number
    charged = db.session.get(Invoice, target) if target is not None else None
    return charged.number if charged is not None else line_invoice.number


def _rows(demand: Demand, lang: str) -> list[Row]:
    money = lambda minor: format_money(minor, demand.currency, lang)  # noqa: E731
    rows = []
    for line in demand.lines:
        invoice = line.invoice
        if invoice.kind == "charges":
            rows.append(Row("charges_item", _charged_number(invoice, demand), "", None, money(line.balance)))
        else:
            rows.append(Row("invoice", invoice.number, long_date(invoice.due_date, lang), line.days_late,
                            money(line.balance + line.discount)))
        if line.discount:  # still available: its last day in the date column (CONTRACT §10)
            rows.append(Row("discount", invoice.number, long_date(invoice.discount_until, lang), None,
                            "−" + money(line.discount)))
        if line.interest:
            rows.append(Row("interest", invoice.number, "", None, money(line.interest)))
        if line.indemnity:
            rows.append(Row("indemnity", invoice.number, "", None, money(line.indemnity)))
    return rows


def _check(demand: Demand, delivery: str) -> None:
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery must be one of {DELIVERIES}, not {delivery!r}")
    if not demand.lines:
        raise ValueError("a letter asks for at least one item")
    added = sum(line.balance + line.interest + line.indemnity for line in demand.lines)
    if added != demand.total:
        # A table that does not add up to the amount claimed is worse than no letter.
        raise ValueError(f"the demand's lines add up to {added}, not its total {demand.total}")


def _payment(creditor: Creditor, demand: Demand, url: str) -> dict:
    payload = transfer.qr_payload(creditor, demand.total, demand.currency, demand.reference)
    return {"iban": creditor.iban, "bic": creditor.bic, "qr": qr_svg_data_uri(payload) if payload else None,
            "holder": transfer.beneficiary(creditor), "reference": format_reference(demand.reference),
            "url": url,
            # Never broken across lines (typed by hand from paper): a longer link gets a smaller type.
            "url_pt": 9 if len(url) <= LINK_FITS else max(5.5, round(9 * LINK_FITS / len(url), 1))}


def letter_context(creditor: Creditor, debtor: Debtor, kind: str, demand: Demand, step: DunningStep | None, *,
                   url: str, day, delivery: str) -> dict:
    _check(demand, delivery)
    lang = debtor.language if debtor.language in LANGUAGES else "fr"
    formal = is_formal_notice(kind, step)
    has_charges = any(line.interest or line.indemnity or line.invoice.kind == "charges" for line in demand.lines)
    town = _town(creditor.address)
    today = long_date(day, lang)
    if lang == "fr":
        place_date = f"{town}, le {today}" if town else f"Le {today}"
    else:
        place_date = today
    earlier = sorted({sent.day for sent in demand.earlier})
    return {
        "lang": lang, "formal": formal, "delivery": delivery, "creditor": creditor, "debtor": debtor,
        "sender_name": creditor.legal_name or creditor.name, "sender_lines": _lines(creditor.address),
        "recipient": recipient_lines(debtor), "place_date": place_date,
        "earlier_count": len(earlier), "earlier_dates": dates_after_noun(earlier, lang),
        "rows": _rows(demand, lang), "total": format_money(demand.total, demand.currency, lang),
        "deadline": long_date(demand.deadline, lang) if demand.deadline else None,
        "legal": legal.paragraph(debtor.kind, lang, formal_notice=formal, contractual_bp=creditor.late_interest_bp)
        if formal or has_charges else "",
        "pay": _payment(creditor, demand, url),
    }


def letter_html(creditor: Creditor, debtor: Debtor, kind: str, demand: Demand, step: DunningStep | None, *,
                url: str, day, delivery: str) -> str:
    """The letter as HTML (what the PDF is made of; for tests and previews).

    `kind`: the message's kind ("formal_notice", "reminder"); a step of tone formal is one too.
    `url`: the portal's short link (PORTAL_BASE_URL/l/<code>); `day`: the letter's date;
    `delivery`: "registered", "letter" or "email", as it will leave."""
    ctx = letter_context(creditor, debtor, kind, demand, step, url=url, day=day, delivery=delivery)
    with force_locale(ctx["lang"]):
        return render_template("pdf/letter.html", **ctx)


def pdf_of(message: OutboxMessage) -> bytes | None:
    """A message's PDF: attached to its e-mail, or made now from the letter composed for the
    print queue (the same bytes every time: the HTML is fixed, dates and link included)."""
    if message.attachment:
        return message.attachment
    return documents.html_pdf(message.letter_html) if message.letter_html else None


# --- the print queue: letters to post, and the record of their posting ------------------------

#: how a letter was posted: ordinary, or registered with acknowledgement of receipt ("recommandé avec AR")
POSTAGES = ("ordinary", "registered")
#: La Poste's numbers ("1A 123 456 7890 1", "RR123456789FR"), checked loosely: letters and digits
TRACKING = re.compile(r"[A-Z0-9]{8,20}")


def clean_tracking(raw: str | None) -> str | None:
    """The number as La Poste prints it, spaces (and dashes) taken out, upper case; None when empty.
    Raises Invalid when what is left is not 8 to 20 letters and digits."""
    number = re.sub(r"[\s\-.]", "", raw or "").upper()
    if not number:
        return None
    if not TRACKING.fullmatch(number):
        raise Invalid("a tracking number is 8 to 20 letters and digits", field="tracking_number",
                      code="tracking_number")
    return number


def posted_day(message: OutboxMessage, creditor: Creditor) -> date | None:
    """The day the letter was posted, in the creditor's calendar."""
    return today_in(creditor.timezone, message.posted_at) if message.posted_at else None


def written_day(message: OutboxMessage, creditor: Creditor) -> date:
    """The day the letter was written, in the creditor's calendar: it cannot be posted before."""
    return today_in(creditor.timezone, message.created_at)


def _letters(creditor_id: int):
    return (select(OutboxMessage, Debtor).join(Debtor, Debtor.id == OutboxMessage.debtor_id)
            .where(OutboxMessage.creditor_id == creditor_id, OutboxMessage.channel == "letter")
            .options(defer(OutboxMessage.text_body), defer(OutboxMessage.html_body),
                     defer(OutboxMessage.attachment), defer(OutboxMessage.letter_html), defer(OutboxMessage.raw)))


def to_post(creditor_id: int) -> list[tuple[OutboxMessage, Debtor]]:
    """The print queue: letters not marked posted, oldest first (the first to go)."""
    q = _letters(creditor_id).where(OutboxMessage.posted_at.is_(None)).order_by(OutboxMessage.created_at,
                                                                                 OutboxMessage.id)
    return [(m, d) for m, d in db.session.execute(q)]


def to_post_count(creditor_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.creditor_id == creditor_id, OutboxMessage.channel == "letter",
        OutboxMessage.posted_at.is_(None))) or 0


def posted(creditor_id: int, limit: int = 50) -> list[tuple[OutboxMessage, Debtor]]:
    """Letters marked posted, the latest posted first."""
    q = _letters(creditor_id).where(OutboxMessage.posted_at.is_not(None)).order_by(
        OutboxMessage.posted_at.desc(), OutboxMessage.id.desc()).limit(limit)
    return [(m, d) for m, d in db.session.execute(q)]


def mark_posted(creditor: Creditor, message_id: int, postage: str, tracking_number: str | None,
                posted_on: date, user: str) -> OutboxMessage:
    """Record that a letter of the print queue was posted, and the event `letter.posted` (the
    creditor's proof, with the address it went to), exactly once: the UPDATE only takes a letter
    not posted yet, so of two users marking it at once one wins and the other gets Conflict.

    A registered letter needs its tracking number; the day is neither in the future nor before
    the letter was written. Another creditor's message, or one that is no letter: NotFound."""
    row = db.session.execute(
        select(OutboxMessage, Debtor).join(Debtor, Debtor.id == OutboxMessage.debtor_id)
        .where(OutboxMessage.id == message_id, OutboxMessage.creditor_id == creditor.id,
               OutboxMessage.channel == "letter")).first()
    if row is None:
        raise NotFound("no such letter")
    message, debtor = row
    if message.posted_at is not None:
        raise Conflict("this letter is already marked posted", code="already_posted")
    if postage not in POSTAGES:
        raise Invalid("choose ordinary or registered", field="postage")
    number = clean_tracking(tracking_number)
    if postage == "registered" and number is None:
        raise Invalid("a registered letter needs its tracking number", field="tracking_number",
                      code="tracking_required")
    today = today_for(creditor)
    if posted_on > today:
        raise Invalid("the posting day cannot be in the future", field="posted_on", code="future")
    if posted_on < written_day(message, creditor):
        raise Invalid("the letter was written after that day", field="posted_on", code="before_letter")
    if not debtor.address:
        raise Invalid("the debtor has no postal address", field="address", code="no_address")
    # Today: the moment it is recorded; an earlier day: noon there (the day is what counts).
    at = utcnow() if posted_on == today else datetime.combine(posted_on, time(12), ZoneInfo(creditor.timezone))
    done = db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message.id, OutboxMessage.posted_at.is_(None))
        .values(posted_at=at, posted_by=user, postage=postage, tracking_number=number)
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        db.session.rollback()
        raise Conflict("this letter is already marked posted", code="already_posted")
    events.record("letter.posted", creditor_id=creditor.id, debtor_id=debtor.id, actor="creditor", user=user,
                  message_id=message.id, kind=message.kind, postage=postage, tracking_number=number,
                  date=posted_on.isoformat(), address=recipient_lines(debtor))
    db.session.commit()
    db.session.refresh(message)
    return message
