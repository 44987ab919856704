"""Scoring a bank credit against a creditor's open items (CONTRACT §7, §8): pure, explained.

`Book` holds what matching needs of one creditor's ledger, indexed in memory (open invoices by
id, by normalised number and by balance; debtors by name; what each debtor's last message asked
for). `match(credit, book)` decides one credit:

- **matched**: the remittance carries one of our RF references (debtor's or invoice's, with or
  without spaces) or names open invoice numbers of one debtor; the outcome lists the invoices
  in allocation order (a debtor reference: the invoices its last message asked for when the
  amount equals them, else oldest due first, disputed last). Applied by the service.
- **suggested**: no reference, but one debtor has an open invoice or a set of open invoices
  whose balances add up to the amount (bounded search), or the payer's name is close to one
  debtor's (rapidfuzz), or the amount equals a debtor's balance. Never applied until confirmed.
- **unmatched**: the rest. **ignored** with reason "payout": a Stripe or GoCardless payout.

Every outcome carries a `reason` (a short code) and a `score` in 0..100, and `explain` (human
text for the back office). No Flask, no SQLAlchemy. Text reading is in domain/remittance.py.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from datetime import date


from portal.domain import remittance
from portal.domain.amount_sets import covering, exact_set
from portal.domain.money import to_decimal_string
from portal.domain.references import DEBTOR, INVOICE, invoice_reference
from portal.domain.remittance import is_payout  # noqa: F401  (part of this module's interface)
# The records matching takes and gives are kept in matching_records.py, part of this module's interface.
from portal.domain.matching_records import Credit, DebtorName, OpenInvoice, Outcome  # noqa: F401

MATCHED, SUGGESTED, UNMATCHED, IGNORED = "matched", "suggested", "unmatched", "ignored"

#: rapidfuzz WRatio (0..100) from which a payer's name is taken for a debtor's
NAME_CLOSE = 85
#: lead the best name needs over the next one to tell debtors apart when it is not close
NAME_APART = 10
#: debtors sharing a payer's name word looked at most, the rarest words first
NAME_CANDIDATES = 20
#: debtors with an invoice of the amount compared by name at most (beyond: those the name finds)
AMOUNT_CANDIDATES = 200


class Book:
    """One creditor's open items for matching, in one currency or several.

    Invoices are held column-wise in arrays, in allocation order: by debtor, then undisputed
    before disputed, oldest due first, then id; a debtor's invoices are one slice of them. Ids
    and balances are found by bisecting sorted copies; settling moves a balance into `_moved`."""

    __slots__ = ("_ids", "_debtor", "_balance", "_cur", "_numbers", "_span", "_id_sorted",
                 "_id_pos", "_bal_sorted", "_bal_pos", "_moved", "_num_hash", "_num_pos", "_currencies",
                 "_totals", "_by_total", "_names", "_name_index", "_asked", "_discount")

    def __init__(self, invoices, debtors, asked: dict[int, tuple[int, ...]] | None = None,
                 discounts: dict[int, tuple[int, date]] | None = None):
        """`invoices`: iterable of OpenInvoice (open ones only), or of tuples in its field order,
        which spares a million objects (already in allocation order spares the sort too);
        `debtors`: iterable of DebtorName; `asked`: debtor id -> invoice ids its last message
        asked for; `discounts`: invoice id -> (early-payment discount, its last day)."""
        self._currencies: dict[str, int] = {}
        cols = ([], [], [], [], [], [], [])  # debtor, disputed, due, id, number, balance, currency
        for inv in invoices:
            if not isinstance(inv, tuple):
                inv = (inv.id, inv.debtor_id, inv.number, inv.balance, inv.currency, inv.due_date,
                       inv.disputed)
            row = (inv[1], 1 if inv[6:] and inv[6] else 0, inv[5].toordinal(), inv[0], inv[2], inv[3],
                   self._currencies.setdefault(inv[4], len(self._currencies)))
            for col, value in zip(cols, row):
                col.append(value)
        debtor_col, disputed, due, ids, numbers, balances, curs = cols
        n = len(ids)
        order = range(n)
        if any((debtor_col[i], disputed[i], due[i], ids[i]) > (debtor_col[i + 1], disputed[i + 1], due[i + 1],
                                                               ids[i + 1]) for i in range(n - 1)):
            order = sorted(order, key=lambda i: (debtor_col[i], disputed[i], due[i], ids[i]))
        self._ids = array("q", (ids[i] for i in order))
        self._debtor = array("q", (debtor_col[i] for i in order))
        self._balance = array("q", (balances[i] for i in order))
        self._cur = array("B", (curs[i] for i in order))
        self._numbers = [numbers[i] for i in order]
        del cols, debtor_col, disputed, due, ids, numbers, balances, curs, order
        self._span: dict[int, tuple[int, int]] = {}
        self._totals: dict[tuple[int, int], int] = {}
        keyed = []  # (hash of the number's key, position): 16 bytes an invoice once in arrays
        for pos in range(n):
            debtor = self._debtor[pos]
            start = self._span.get(debtor, (pos,))[0]
            self._span[debtor] = (start, pos + 1)
            key = (debtor, self._cur[pos])
            self._totals[key] = self._totals.get(key, 0) + self._balance[pos]
            number = remittance.number_key(self._numbers[pos])
            if len(number) >= remittance.MIN_NUMBER_KEY:
                keyed.append((hash(number), pos))
        keyed.sort()
        self._num_hash = array("q", (h for h, _ in keyed))
        self._num_pos = array("q", (p for _, p in keyed))
        del keyed
        self._by_total: dict[tuple[int, int], set[int]] = {}
        for (debtor, cur), total in self._totals.items():
            self._by_total.setdefault((cur, total), set()).add(debtor)
        by_id = sorted(range(n), key=self._ids.__getitem__)
        self._id_sorted = array("q", (self._ids[i] for i in by_id))
        self._id_pos = array("q", by_id)
        by_balance = sorted(range(n), key=self._balance.__getitem__)
        self._bal_sorted = array("q", (self._balance[i] for i in by_balance))
        self._bal_pos = array("q", by_balance)
        self._moved: dict[int, set[int]] = {}
        self._names: dict[int, tuple[str, str]] = {}  # debtor -> (name as given, words compared)
        self._name_index: dict[str, list[int]] = {}
        for debtor in debtors:
            words = remittance.name_words(debtor.name)
            self._names[debtor.id] = (debtor.name, " ".join(words))
            for word in set(words):
                self._name_index.setdefault(word, []).append(debtor.id)
        self._asked = dict(asked or {})
        # by position: (discount, last day's ordinal); a transfer booked by then pays the balance less it
        self._discount = {p: (d, until.toordinal()) for i, (d, until) in (discounts or {}).items()
                          if (p := self._position(i)) is not None}

    def settle(self, invoice_id: int, amount: int) -> None:
        """`amount` of that invoice was just paid (by an applied match): later credits of the same
        import see its new balance (gone from the book when nothing is left)."""
        pos = self._position(invoice_id)
        if pos is None or amount <= 0:
            return
        old = self._balance[pos]
        new = max(old - amount, 0)
        self._balance[pos] = new
        self._moved.get(old, set()).discard(pos)
        if new:
            self._moved.setdefault(new, set()).add(pos)
        key = (self._debtor[pos], self._cur[pos])
        total = self._totals[key]
        self._by_total[(key[1], total)].discard(key[0])
        self._totals[key] = total - (old - new)
        self._by_total.setdefault((key[1], total - (old - new)), set()).add(key[0])

    # --- lookups, positions only of invoices still open ---------------------------------------
    def _position(self, invoice_id: int) -> int | None:
        i = bisect_left(self._id_sorted, invoice_id)
        if i < len(self._id_sorted) and self._id_sorted[i] == invoice_id and self._balance[self._id_pos[i]]:
            return self._id_pos[i]
        return None

    def _open(self, debtor: int, cur: int | None) -> list[int]:
        start, end = self._span.get(debtor, (0, 0))
        return [p for p in range(start, end) if self._cur[p] == cur and self._balance[p]]

    def _of_balance(self, amount: int, cur: int) -> list[int]:
        lo, hi = bisect_left(self._bal_sorted, amount), bisect_right(self._bal_sorted, amount)
        found = {p for p in self._bal_pos[lo:hi] if self._balance[p] == amount}
        found.update(self._moved.get(amount, ()))
        return sorted(p for p in found if self._cur[p] == cur)

    def _numbered(self, key: str) -> list[int]:
        """Positions of the invoices whose number has this key (two keys may share a hash)."""
        h = hash(key)
        lo = bisect_left(self._num_hash, h)
        if lo == len(self._num_hash) or self._num_hash[lo] != h:
            return []
        hi = bisect_right(self._num_hash, h, lo)
        return [p for p in self._num_pos[lo:hi] if remittance.number_key(self._numbers[p]) == key]

    def _count_of_balance(self, amount: int) -> int:
        """Invoices that had this balance when the book was built, any currency."""
        return bisect_right(self._bal_sorted, amount) - bisect_left(self._bal_sorted, amount)

    def _ids_of(self, positions) -> tuple[int, ...]:
        return tuple(self._ids[p] for p in sorted(positions))

    def _sum(self, positions) -> int:
        return sum(self._balance[p] for p in positions)

    def _due(self, positions, day: date) -> int:
        """What pays these invoices in full on `day`: their balances, less the early-payment
        discounts still available that day (CONTRACT §10)."""
        today, none = day.toordinal(), (0, 0)
        return sum(max(self._balance[p] - (d if last >= today else 0), 0)
                   for p in positions for d, last in (self._discount.get(p, none),))

    def _of_due(self, amount: int, cur: int, day: date) -> list[int]:
        """Invoices whose discounted balance on `day` is `amount` (those with a discount only)."""
        return [p for p in self._discount if self._balance[p] and self._cur[p] == cur and self._due([p], day) == amount]

    def _name(self, debtor: int) -> str:
        return self._names.get(debtor, (f"debtor {debtor}", ""))[0]

    def _similar(self, payer: str, debtors) -> list[tuple[float, int]]:
        """(similarity, debtor) of those debtors to the payer's name words, best first."""
        from rapidfuzz import fuzz  # here: only a bank statement's matching needs it

        scored = [(fuzz.WRatio(payer, self._names[d][1]), d) for d in debtors if d in self._names]
        return sorted(scored, key=lambda s: (-s[0], s[1]))

    def _named(self, payer: str) -> list[tuple[float, int]]:
        """Debtors whose name is close to the payer's: candidates by shared words, rarest first,
        then compared with rapidfuzz; never a scan of every debtor."""
        postings = sorted((self._name_index[w] for w in set(payer.split()) if w in self._name_index), key=len)
        hits: dict[int, int] = {}
        for posting in postings:
            if hits and len(posting) > 50 * NAME_CANDIDATES:
                break  # a common word: the rarer ones have found the candidates
            for debtor in posting[:50 * NAME_CANDIDATES]:
                hits[debtor] = hits.get(debtor, 0) + 1
        best = sorted(hits, key=lambda d: -hits[d])[:NAME_CANDIDATES]
        return [s for s in self._similar(payer, best) if s[0] >= NAME_CLOSE]


def _outcome(book: Book, status: str, reason: str, score: int, debtor: int | None, positions, explain: str):
    return Outcome(status, reason, score, debtor, book._ids_of(positions) if positions else (), explain)


def _money(amount: int, currency: str) -> str:
    return f"{to_decimal_string(amount, currency)} {currency}"


def match(credit: Credit, book: Book) -> Outcome:
    cur = book._currencies.get(credit.currency)
    words = remittance.tokens(credit.remittance)
    refs = remittance.references(remittance.tokens(credit.structured_reference)) + remittance.references(words)
    decided, note = _by_reference(credit, book, cur, refs)
    if decided:
        return decided
    if is_payout(credit.counterparty, credit.remittance):
        return Outcome(IGNORED, "payout", 100, explain="A Stripe or GoCardless payout: those payments are "
                                                         "already recorded from the provider.")
    decided = _by_numbers(credit, book, cur, words)
    return decided or _suggest(credit, book, cur, note)


def _by_reference(credit, book, cur, refs):
    """Matched on our references; else (None, a note on references that led nowhere)."""
    debtors: dict[int, list[int]] = {}
    stale = []
    for readings in refs:
        for kind, row_id in readings:
            pos = book._position(row_id) if kind == INVOICE else None
            if pos is not None and book._cur[pos] == cur:
                debtors.setdefault(book._debtor[pos], []).append(pos)
                break
            if kind == DEBTOR and row_id in book._names:
                debtors.setdefault(row_id, [])
                break
        else:
            if readings[-1][0] == INVOICE:  # the shortest reading: most likely what was typed
                stale.append(invoice_reference(readings[-1][1]))
    note = f"It quotes {', '.join(stale)}, of no open invoice in {credit.currency}. " if stale else ""
    if len(debtors) > 1:
        return None, note + f"It quotes references of {len(debtors)} different debtors. "
    if not debtors:
        return None, note
    (debtor, quoted), = debtors.items()
    name = book._name(debtor)
    if quoted:
        total = book._sum(quoted)
        rest = "" if credit.amount in (total, book._due(quoted, credit.booking_date)) else (
            " The amount is below their balance: allocated oldest first." if credit.amount < total
            else " The amount is above their balance: the rest stays as credit.")
        return _outcome(book, MATCHED, "invoice_reference", 100, debtor, quoted,
                        f"The remittance quotes the payment reference of {len(quoted)} open invoice(s) "
                        f"of {name}.{rest}"), note
    open_ = book._open(debtor, cur)
    asked = sorted(p for p in (book._position(i) for i in book._asked.get(debtor, ())) if p is not None
                   and book._cur[p] == cur)
    if asked and credit.amount in (book._sum(asked), book._due(asked, credit.booking_date)):
        return _outcome(book, MATCHED, "debtor_reference", 100, debtor, asked,
                        f"The remittance quotes the payment reference of {name}, and the amount is what "
                        f"its last message asked for ({len(asked)} invoice(s))."), note
    left = credit.amount - book._sum(open_)
    rest = f" {_money(left, credit.currency)} stays as credit." if left > 0 else ""
    return _outcome(book, MATCHED, "debtor_reference", 100, debtor, open_,
                    f"The remittance quotes the payment reference of {name}: allocated to its open "
                    f"invoices oldest due first, disputed ones last.{rest}"), note


def _by_numbers(credit, book, cur, words):
    """Matched when the text names open invoice numbers of one debtor in the credit's currency;
    numbers of several debtors are at most a suggestion."""
    found = [p for positions in remittance.number_candidates(words, book._numbered)
             for p in positions if book._balance[p] and book._cur[p] == cur]
    if not found:
        return None
    by_debtor: dict[int, list[int]] = {}
    for p in found:
        by_debtor.setdefault(book._debtor[p], []).append(p)
    numbers = ", ".join(book._numbers[p] for p in found)
    if len(by_debtor) == 1:
        (debtor, positions), = by_debtor.items()
        exact = credit.amount in (book._sum(positions), book._due(positions, credit.booking_date))
        return _outcome(book, MATCHED, "invoice_numbers", 95 if exact else 90, debtor, positions,
                        f"The remittance names invoice(s) {numbers} of {book._name(debtor)}"
                        + ("." if exact else ", whose balance differs from the amount."))
    summing = [d for d, ps in by_debtor.items() if book._sum(ps) == credit.amount]
    if len(summing) == 1:
        debtor = summing[0]
        return _outcome(book, SUGGESTED, "invoice_numbers", 60, debtor, by_debtor[debtor],
                        f"The remittance names invoices of {len(by_debtor)} debtors ({numbers}); those of "
                        f"{book._name(debtor)} add up to the amount.")
    return Outcome(UNMATCHED, "none", 0, explain=f"The remittance names invoices of {len(by_debtor)} "
                                                  f"different debtors ({numbers}): a person must decide.")


def _suggest(credit, book, cur, note=""):
    """Suggestions: candidates found by amount first (an invoice of that balance, a debtor's whole
    balance), then names compared; failing those, the payer's name and a set of its invoices."""
    payer = " ".join(remittance.name_words(credit.counterparty))
    amount = credit.amount
    by_invoice: dict[int, list[int]] = {}
    by_total = book._by_total.get((cur, amount), set()) if cur is not None else set()
    common = cur is not None and book._count_of_balance(amount) > AMOUNT_CANDIDATES
    if common:  # a round amount that many invoices have: the payer's name picks the few to look at
        named = close = book._named(payer) if payer else []
        for _, d in named:
            ps = [p for p in book._open(d, cur) if amount in (book._balance[p], book._due([p], credit.booking_date))]
            if ps:
                by_invoice[d] = ps
        by_total = by_total & {d for _, d in named}
        named = [s for s in named if s[1] in by_invoice or s[1] in by_total]
    else:
        for p in book._of_balance(amount, cur) + book._of_due(amount, cur, credit.booking_date) if cur is not None else ():
            by_invoice.setdefault(book._debtor[p], []).append(p)
    candidates = list(by_invoice) + sorted(by_total - by_invoice.keys())
    if not common:
        named = close = book._similar(payer, candidates) if payer and candidates else []
    count = f"over {AMOUNT_CANDIDATES}" if common else str(len(candidates))
    debtor, score, how = None, 0, ""
    if len(candidates) == 1 and not common:
        debtor = candidates[0]
        near = bool(named) and named[0][0] >= NAME_CLOSE
        score, how = 70 + 15 * near, " and the payer's name is close to it" if near else ""
    elif candidates and named:
        best, second = named[0][0], named[1][0] if len(named) > 1 else 0
        if best >= NAME_CLOSE and best - second > 0:
            debtor, score, how = named[0][1], 80, f"; the payer's name points to this one among {count}"
        elif best - second >= NAME_APART:
            debtor, score, how = named[0][1], 50, (f"; among {count} debtors its name is the "
                                                   f"nearest to the payer's, though not close")
    if debtor is not None:
        name = book._name(debtor)
        if debtor in by_invoice:
            ps = by_invoice[debtor]
            return _outcome(book, SUGGESTED, "exact_amount", score - 5 * (len(ps) > 1), debtor, ps[:1],
                            note + f"{name} has an open invoice of exactly {_money(amount, credit.currency)}{how}.")
        return _outcome(book, SUGGESTED, "debtor_balance", score - 5, debtor, book._open(debtor, cur),
                        note + f"The amount equals the whole balance of {name}{how}.")
    if candidates or (common and not close):
        return Outcome(UNMATCHED, "none", 0, explain=note + f"{count} debtors have an invoice or a "
                                                             f"balance of this amount; nothing tells them apart.")
    return _by_name(credit, book, cur, payer, note)


def _by_name(credit, book, cur, payer, note):
    named = book._named(payer) if payer else []
    if not named or (len(named) > 1 and named[1][0] >= named[0][0]):
        why = "several debtors' names are as close to the payer's" if named else "nothing points to one debtor"
        return Outcome(UNMATCHED, "none", 0, explain=note + f"No reference or invoice number; {why}.")
    similarity, debtor = named[0]
    name, open_ = book._name(debtor), book._open(debtor, cur)
    items = [(p, book._balance[p]) for p in open_]
    found = exact_set(items, credit.amount)
    if found:
        positions, oldest = found
        return _outcome(book, SUGGESTED, "invoice_set", 75 if oldest else 70, debtor, positions,
                        note + f"The payer's name is close to {name}, and {len(positions)} of its open invoices "
                               f"add up to the amount.")
    return _outcome(book, SUGGESTED, "payer_name", 40 + round(similarity - NAME_CLOSE), debtor,
                    covering(items, credit.amount),
                    note + f"The payer's name is close to {name} ({round(similarity)}/100); no invoice or set "
                           f"of invoices has this amount.")
