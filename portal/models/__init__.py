"""SQLAlchemy models, one module per area. Uniqueness constraints carry the idempotency (DESIGN: invariants).

Amounts are integer minor units (BigInteger); times are UTC; dates are calendar dates.

Each area imports only the areas below it (base < parties < invoices < payments, disputes, events,
dunning, bank, tasks, workbench), and every name is re-exported here, so `from portal.models import Invoice` is the one way
in. The areas are imported in the order the tables were always declared, so the metadata lists them
in the same order.
"""
from .base import UTCDateTime, utcnow
from .parties import ApiKey, Creditor, CreditorMembership, CreditorUser, Debtor
from .invoices import INVOICE_STATUSES, OPEN_STATUSES, Document, Invoice
from .payments import (ATTEMPT_RANK, IN_FLIGHT_STATUSES, MANDATE_RANK, MANDATE_USABLE, Mandate, Payment,
                       PaymentAllocation, PaymentAttempt, PaymentAttemptLine, PaymentReversal, WebhookEvent)
from .disputes import (DISPUTE_REASONS, DISPUTE_RESOLUTIONS, PROMISE_STATUSES, Dispute, DisputeAttachment,
                       DisputeMessage, PaymentPromise)
from .events import Event, PortalLink, PortalSession
from .dunning import (REMINDER_STATUSES, STEP_CHANNELS, STEP_TONES, DunningDay, DunningPlan, DunningStep,
                      OutboxHandover, OutboxMessage, ReferenceRate, Reminder)
from .bank import (TRANSACTION_STATUSES, TX_IGNORED, TX_MATCHED, TX_OPEN_STATUSES, TX_SUGGESTED, TX_UNMATCHED,
                   BankStatement, BankTransaction)
from .tasks import CALL_OUTCOMES, TASK_KINDS, TASK_STATUSES, Task, TaskInvoice
from .workbench import DebtorNote, DunningPause

__all__ = [
    "UTCDateTime", "utcnow",
    "ApiKey", "Creditor", "CreditorMembership", "CreditorUser", "Debtor",
    "INVOICE_STATUSES", "OPEN_STATUSES", "Document", "Invoice",
    "ATTEMPT_RANK", "IN_FLIGHT_STATUSES", "MANDATE_RANK", "MANDATE_USABLE", "Mandate", "Payment", "PaymentAllocation",
    "PaymentAttempt", "PaymentAttemptLine", "PaymentReversal", "WebhookEvent",
    "DISPUTE_REASONS", "DISPUTE_RESOLUTIONS", "PROMISE_STATUSES", "Dispute", "DisputeAttachment", "DisputeMessage",
    "PaymentPromise",
    "Event", "PortalLink", "PortalSession",
    "REMINDER_STATUSES", "STEP_CHANNELS", "STEP_TONES", "DunningDay", "DunningPlan", "DunningStep", "OutboxHandover",
    "OutboxMessage", "ReferenceRate", "Reminder",
    "TRANSACTION_STATUSES", "TX_IGNORED", "TX_MATCHED", "TX_OPEN_STATUSES", "TX_SUGGESTED", "TX_UNMATCHED",
    "BankStatement", "BankTransaction",
    "CALL_OUTCOMES", "TASK_KINDS", "TASK_STATUSES", "Task", "TaskInvoice",
    "DebtorNote", "DunningPause",
]
