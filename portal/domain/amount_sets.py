"""Which open items an amount pays (portal/domain/matching.py): the oldest it reaches, or a small
set whose balances add up to it exactly. Items are (key, balance) in allocation order."""
from __future__ import annotations

#: the oldest items searched for a set adding up to an amount, and the set's size at most
SUBSET_POOL = 40
SUBSET_SIZE = 4


def covering(items: list[tuple[object, int]], amount: int) -> list[object]:
    """Keys of the first items, in allocation order, that the amount reaches."""
    out, left = [], amount
    for key, balance in items:
        if left <= 0:
            break
        out.append(key)
        left -= balance
    return out


def exact_set(items: list[tuple[object, int]], amount: int) -> tuple[list[object], bool] | None:
    """Keys of two to SUBSET_SIZE of the SUBSET_POOL oldest items whose balances add up to the
    amount, and whether they are simply the oldest ones; else None. Bounded whatever the number of
    items: meet in the middle over pairs (pool² / 2 sums), so a debtor with 5,000 invoices costs
    what one with 40 does. The first set found wins: the oldest ones, then fewer, then older."""
    pool = [(k, b) for k, b in items if b <= amount][:SUBSET_POOL]
    running = 0
    for n, (_, balance) in enumerate(pool[:SUBSET_SIZE]):
        running += balance
        if running == amount and n:
            return [k for k, _ in pool[:n + 1]], True
    pairs: dict[int, tuple[int, int]] = {}
    for i, (_, a) in enumerate(pool):
        for j in range(i + 1, len(pool)):
            pairs.setdefault(a + pool[j][1], (i, j))
    found = pairs.get(amount)
    if found is None:
        for i, (_, balance) in enumerate(pool):  # three: one and a pair
            pair = pairs.get(amount - balance)
            if pair and i not in pair:
                found = (i, *pair)
                break
    if found is None:
        for total, pair in pairs.items():  # four: two pairs
            other = pairs.get(amount - total)
            if other and not set(pair) & set(other):
                found = (*pair, *other)
                break
    return ([pool[i][0] for i in sorted(found)], False) if found else None
