"""Bank statements imported and the transactions they carried (CONTRACT §8)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow

#: a payment was recorded through the ledger for it, or an already recorded one linked to it
TX_MATCHED = "matched"
#: a likely debtor or invoices, never applied until a person confirms
TX_SUGGESTED = "suggested"
#: a credit nothing in the ledger points to: for a person
TX_UNMATCHED = "unmatched"
#: not to be matched: a payout of a provider, a debit (reason "debit"), or a person's decision
TX_IGNORED = "ignored"
TRANSACTION_STATUSES = (TX_MATCHED, TX_SUGGESTED, TX_UNMATCHED, TX_IGNORED)
#: a person may still match these
TX_OPEN_STATUSES = (TX_SUGGESTED, TX_UNMATCHED)


class BankStatement(db.Model):
    """One file imported: its format and what it brought."""
    __tablename__ = "bank_statement"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    #: camt.053, camt.054, cfonb120, mt940, ofx
    format: Mapped[str] = mapped_column(String(12))
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: lines read, of which new (the others were already recorded), and how the new credits went
    transactions: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    suggested: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)
    #: the user's e-mail, "api" or "cli"
    imported_by: Mapped[str] = mapped_column(String(254))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_bank_statement_creditor_id", "creditor_id", "id"),)


class BankTransaction(db.Model):
    """One booked line of a bank account, stored once: unique (creditor, account, identity) is
    what makes a re-imported or overlapping statement, or two imports at once, record it once."""
    __tablename__ = "bank_transaction"
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditor.id"))
    #: the statement that first brought it
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statement.id"), index=True)
    #: the creditor's account it was booked on (compact IBAN, else the bank's identifier)
    account: Mapped[str] = mapped_column(String(64))
    #: "ref:" + the bank's reference, else "hash:" + a hash (gateways/bank): stable between statements
    identity: Mapped[str] = mapped_column(String(255))
    booking_date: Mapped[date] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    #: minor units: positive a credit (money in), negative a debit
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    counterparty: Mapped[str | None] = mapped_column(String(255))
    counterparty_account: Mapped[str | None] = mapped_column(String(64))
    remittance: Mapped[str] = mapped_column(Text, default="")
    structured_reference: Mapped[str | None] = mapped_column(String(64))
    bank_reference: Mapped[str | None] = mapped_column(String(255))
    end_to_end_id: Mapped[str | None] = mapped_column(String(64))
    #: one of TRANSACTION_STATUSES
    status: Mapped[str] = mapped_column(String(12))
    #: why: the matching's reason (invoice_reference, exact_amount, payer_name, payout, ...),
    #: already_recorded (linked to a payment posted through the API), debit, manual, confirmed
    reason: Mapped[str] = mapped_column(String(32), default="none")
    #: the matching's confidence, 0..100
    score: Mapped[int] = mapped_column(Integer, default=0)
    debtor_id: Mapped[int | None] = mapped_column(ForeignKey("debtor.id"), index=True)
    #: invoice ids suggested, or paid by the match, in allocation order
    invoice_ids: Mapped[list] = mapped_column(JSON, default=list)
    #: the ledger payment it became, or the one already recorded that it was linked to (once)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"), unique=True)
    #: who decided last (a person's e-mail, "api", or "system" for the import's matching)
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("creditor_id", "account", "identity"),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        CheckConstraint("status IN ('matched', 'suggested', 'unmatched', 'ignored')", name="status"),
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
        # The reconciliation screen and GET /bank-transactions?status=: newest first per status.
        Index("ix_bank_transaction_creditor_status", "creditor_id", "status", "booking_date"),
    )
