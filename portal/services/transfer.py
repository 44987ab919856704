"""Pay by bank transfer: what a page shows the debtor to pay without typing errors (CONTRACT §7).

The creditor's IBAN and BIC, the RF reference to quote and, for euros, an EPC QR code
("GiroCode") asking for the amount. The rule of the reference: a page that asks for one invoice
shows the invoice's, one that asks for several (the account, the statement) shows the debtor's.
No QR code without an IBAN, for another currency than the euro, or for nothing to pay: the
written details still show what exists."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..domain import giro
from ..domain.references import debtor_reference, epc_qr_payload, format_reference, invoice_reference
from ..models import Creditor, Debtor, Invoice


@dataclass(frozen=True)
class TransferDetails:
    beneficiary: str
    #: compact (no spaces); None when the creditor has not given one
    iban: str | None
    bic: str | None
    #: ISO 11649, unformatted ("RF18D1"): what the copy button copies and the QR code carries
    reference: str
    #: the invoice a one-invoice page asks for; None for the debtor's whole account
    invoice_number: str | None
    #: the amount the QR code asks for, in `currency` (minor units); None: no QR code
    amount: int | None
    currency: str
    qr_payload: str | None

    @property
    def reference_text(self) -> str:
        """In groups of four, for reading and typing: "RF18 D1"."""
        return format_reference(self.reference)

    def qr_data_uri(self, scale: int = 4) -> str | None:
        """The QR code as an SVG data: URI, for an <img> (pages: CSP allows data: images; PDFs)."""
        return _qr_data_uri(self.qr_payload, scale) if self.qr_payload else None


@lru_cache(maxsize=512)
def _qr_data_uri(payload: str, scale: int) -> str:
    # The same account shown again (a statement, the home page after an unrelated event) asks for
    # the same payload: drawn once.
    return giro.qr_svg_data_uri(payload, scale)


def beneficiary(creditor: Creditor) -> str:
    return creditor.legal_name or creditor.name


def qr_payload(creditor: Creditor, amount: int | None, currency: str | None, reference: str | None) -> str | None:
    """The EPC QR text asking `amount` to be paid to the creditor with `reference`, or None when
    there can be no code: no IBAN, another currency than the euro, nothing to pay, or an amount
    over the EPC maximum (999 999 999,99 €). The page, e-mail or letter then shows the written
    details alone. Every code Relance draws (portal, statement, e-mails, letters) comes from here."""
    if not (creditor.iban and currency == "EUR" and amount and amount > 0 and reference):
        return None
    try:
        return epc_qr_payload(beneficiary(creditor), creditor.iban, creditor.bic, amount, currency, reference)
    except ValueError:
        return None


def details(creditor: Creditor, reference: str, amount: int, currency: str,
            invoice_number: str | None = None) -> TransferDetails:
    payload = qr_payload(creditor, amount, currency, reference)
    return TransferDetails(beneficiary(creditor), creditor.iban, creditor.bic, reference,
                           invoice_number, amount if payload else None, currency, payload)


def for_debtor(creditor: Creditor, debtor: Debtor, balances: dict[str, int]) -> TransferDetails:
    """The whole account (several invoices): the debtor's reference; the QR code asks for the
    open balance in euros (the items in another currency are paid apart, without a code)."""
    return details(creditor, debtor_reference(debtor.id), balances.get("EUR", 0), "EUR")


def for_invoice(creditor: Creditor, invoice: Invoice) -> TransferDetails:
    """One invoice: its own reference, and its balance."""
    return details(creditor, invoice_reference(invoice.id), invoice.balance, invoice.currency, invoice.number)
