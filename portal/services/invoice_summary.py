"""The summary PDF of an invoice whose creditor uploaded none (issue 17).

Not a second invoice: under the e-invoicing reform the creditor's own invoice is the legal
document, so this page is titled a summary and says so. It states what Code de commerce L441-9
asks an invoice to state about payment (the due date, the late-payment rate, the 40 EUR fixed
recovery indemnity owed by a business, the discount terms or "no discount"), the amounts known
(excluding VAT, VAT, including VAT), what has been paid so far, the balance and the RF reference.

Rendered fresh on each request in the debtor's language, never stored: "paid so far" and the
balance change with every payment, and a stored copy would go on showing the old ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.numbers import format_decimal
from flask import render_template
from flask_babel import force_locale
from sqlalchemy import select

from ..domain import legal
from ..domain.calendar import today_for
from ..domain.long_dates import long_date
from ..domain.references import format_reference, invoice_reference
from ..extensions import db
from ..models import Creditor, Debtor, Invoice, ReferenceRate

#: a postal address prints at most 6 lines (NF Z10-011, as Debtor.address keeps it)
ADDRESS_LINES = 6


@dataclass(frozen=True)
class LateTerms:
    """The late-payment terms owed by this kind of debtor (domain/legal)."""
    #: the creditor's contractual annual rate (business only), else None: the statutory one
    contractual_bp: int | None
    #: points over the ECB main refinancing rate (10 business, 8 public); None for a consumer
    margin_bp: int | None
    #: the ECB rate in force today and since when, to state the figure it makes (None: not on file)
    ecb_bp: int | None
    ecb_since: date | None
    #: the fixed recovery indemnity (EUR minor units); 0 for a consumer
    indemnity: int


def percent(value, lang: str) -> str:
    """2 -> "2 %" in French (narrow no-break space), "2%" in English; 12.15 -> "12,15 %"."""
    number = format_decimal(Decimal(value), "0.##", locale=lang)
    return f"{number}\u202f%" if lang == "fr" else f"{number}%"


def address_lines(address: str | None) -> list[str]:
    return [line.strip() for line in (address or "").splitlines() if line.strip()][:ADDRESS_LINES]


def late_terms(creditor: Creditor, debtor: Debtor, today: date) -> LateTerms:
    basis = legal.basis(debtor.kind)
    contractual = creditor.late_interest_bp if basis.contractual_rate else None
    ecb = None
    if basis.margin_bp is not None and contractual is None:
        ecb = db.session.scalar(select(ReferenceRate).where(ReferenceRate.effective_from <= today)
                                .order_by(ReferenceRate.effective_from.desc()).limit(1))
    return LateTerms(contractual, basis.margin_bp, ecb.rate_bp if ecb else None, ecb.effective_from if ecb else None,
                     basis.indemnity_eur_minor)


def summary_html(invoice: Invoice, debtor: Debtor, creditor: Creditor) -> str:
    """The page, in the debtor's language whoever asks (the back office too)."""
    lang = debtor.language
    today = today_for(creditor)
    with force_locale(lang):
        return render_template(
            "pdf/invoice.html", invoice=invoice, debtor=debtor, creditor=creditor, lang=lang,
            creditor_lines=address_lines(creditor.address), debtor_lines=address_lines(debtor.address),
            reference=format_reference(invoice_reference(invoice.id)), terms=late_terms(creditor, debtor, today),
            long_date=lambda d: long_date(d, lang), percent=lambda v: percent(v, lang),
            rate=lambda bp: percent(Decimal(bp) / 100, lang))


def filename(invoice: Invoice, lang: str) -> str:
    stem = "summary" if lang == "en" else "recapitulatif"
    return f"{stem}-{invoice.number.replace('/', '-')}.pdf"
