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
    # Drawing a code takes tens of milliseconds (segno tries every mask); the same account shown
    # again (a statement, the home page after an unrelated event) asks for the same payload.
    return giro.qr_svg_data_uri(payload, scale)


def details(creditor: Creditor, reference: str, amount: int, currency: str,
            invoice_number: str | None = None) -> TransferDetails:
    payload = None
    if creditor.iban and currency == "EUR" and amount > 0:
        try:
            payload = epc_qr_payload(creditor.legal_name or creditor.name, creditor.iban, creditor.bic,
                                     amount, currency, reference)
        except ValueError:  # e.g. over the EPC maximum (999 999 999,99 €): the written details remain
            payload = None
    return TransferDetails(creditor.legal_name or creditor.name, creditor.iban, creditor.bic, reference,
                           invoice_number, amount if payload else None, currency, payload)


def for_debtor(creditor: Creditor, debtor: Debtor, balances: dict[str, int]) -> TransferDetails:
    """The whole account (several invoices): the debtor's reference; the QR code asks for the
    open balance in euros (the items in another currency are paid apart, without a code)."""
    return details(creditor, debtor_reference(debtor.id), balances.get("EUR", 0), "EUR")


def for_invoice(creditor: Creditor, invoice: Invoice) -> TransferDetails:
    """One invoice: its own reference, and its balance."""
    return details(creditor, invoice_reference(invoice.id), invoice.balance, invoice.currency, invoice.number)
