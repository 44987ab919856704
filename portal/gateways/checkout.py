"""What a Stripe Checkout Session carries that services build, without loading the Stripe SDK:
services import this at start-up, the SDK loads only when card payment is configured and used."""
from __future__ import annotations

METADATA_VALUE_MAX = 500  # Stripe's limit per metadata value


def invoice_metadata(numbers: list[str]) -> dict[str, str]:
    """Invoice numbers in metadata values of at most 500 characters: invoices, invoices_2, ..."""
    chunks, current = [], ""
    for n in numbers:
        candidate = f"{current},{n}" if current else n
        if len(candidate) > METADATA_VALUE_MAX:
            chunks.append(current)
            candidate = n
        current = candidate
    chunks.append(current)
    return {("invoices" if i == 0 else f"invoices_{i + 1}"): c for i, c in enumerate(chunks)}
