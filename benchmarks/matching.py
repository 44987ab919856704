"""Matching bank credits against a creditor's open invoices loaded from PostgreSQL (issue 16).

A throw-away database gets one creditor, --invoices / 10 debtors (names made of two or three
pseudo-words and a legal form) and --invoices open invoices (COPY). The Book is loaded from
PostgreSQL: `portal.services.bank_book.load_book(creditor_id)` when this tree has it (its queries
and the build timed together; `asked` then comes from the messages, none here), else the query
below (rows already in allocation order, as tuples) and the benchmark's own `asked`. Then --credits credits:

- 60 % quote an RF reference (two thirds an invoice's, one third a debtor's), spelt as payers do
  (grouped, lower case, glued, noise words around);
- 25 % name one to three invoice numbers of one debtor in free text ("FACT F0012345",
  "factures F…/F…", "Fact. n° …", "FA-…");
- 15 % have neither: half the amount of one open invoice, half a set or a random amount, each
  with the debtor's name as the bank gives it (upper case, legal form, sometimes cut short):
  candidates found by amount first, then names compared.

Timed: the query, the Book's build, matching per kind (µs per credit, the matched allocations
settled in the Book as the service will) and, in the same run, a plain dict lookup of the RF
credits' references (the baseline: the reference as generated, looked up in a dict of every
invoice's and debtor's reference). Prints the figures, the ratios and the peak RSS; never asserts on time.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/matching.py [--invoices 1000000] [--credits 100000]
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import secrets
import sys
import time
import tracemalloc
from collections import Counter
from datetime import date, timedelta

from dunning import _copy, copy_creditor, log, make_app  # also puts the project on sys.path

import psycopg  # noqa: E402

from bench_db import create_database, drop_database  # noqa: E402
from portal.domain.matching import MATCHED, Book, Credit, DebtorName, match  # noqa: E402
from portal.domain.references import debtor_reference, format_reference, invoice_reference  # noqa: E402

try:  # the reconciliation service's loading, when this tree has it
    from portal.services.bank_book import load_book  # noqa: E402
except ImportError:
    load_book = None

SEED = 20261206
DAY = date(2026, 12, 6)
BOOK_SQL = ("SELECT id, debtor_id, number, amount - amount_paid, currency, due_date, disputed FROM invoice "
            "WHERE creditor_id = %s AND status IN ('open', 'partially_paid') AND amount > amount_paid "
            "ORDER BY debtor_id, disputed, due_date, id")
DEBTOR_SQL = "SELECT id, name FROM debtor WHERE creditor_id = %s"
LEGAL = ["SARL", "SAS", "SA", "EURL", "SASU", "GmbH", "Ltd", "SCI", ""]
NOISE = ["VIR SEPA", "VIREMENT", "PAIEMENT", "REGLEMENT", "merci", "REF", "NOTPROVIDED", "/", "-"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pseudo_words(rng: random.Random, n: int) -> list[str]:
    syll = ["ba", "ber", "bo", "ca", "che", "da", "de", "di", "du", "fa", "fo", "ga", "gui", "la", "le", "li", "lo",
            "ma", "me", "mi", "mo", "na", "ne", "no", "pa", "pe", "pi", "ra", "re", "ri", "ro", "sa", "se", "si",
            "ta", "te", "ti", "to", "va", "ve", "vi", "mont", "bert", "rand", "lier", "court", "ville", "ton"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syll) for _ in range(rng.randint(2, 4))).capitalize())
    return sorted(words)


def load(conn, creditor_id: int, n_invoices: int, rng: random.Random) -> int:
    """Debtors and open invoices with COPY; returns the number of debtors."""
    n_debtors = max(1, n_invoices // 10)
    vocab = pseudo_words(rng, 3000)
    now = DAY.isoformat()
    conn.execute("SET session_replication_role = replica")
    _copy(conn, "debtor", ["creditor_id", "ref", "name", "language", "profile", "kind", "created_at", "updated_at"],
          (f"{creditor_id}\tD{i:07d}\t{' '.join(rng.sample(vocab, rng.choice((2, 2, 3))))} {rng.choice(LEGAL)}"
           f"\tfr\tstandard\tbusiness\t{now}\t{now}\n" for i in range(n_debtors)))
    ids = [r[0] for r in conn.execute("SELECT id FROM debtor WHERE creditor_id = %s ORDER BY ref", (creditor_id,))]

    def invoices():
        for i in range(n_invoices):
            debtor = ids[rng.randrange(n_debtors)]
            due = DAY - timedelta(days=rng.randint(-30, 400))
            number = f"F{i + 100000:07d}" if i % 4 else f"FA-{2020 + i % 6}-{i:07d}"
            amount = rng.choice((rng.randint(10_00, 5_000_00), rng.randint(1, 200) * 50_00))
            paid = amount // 2 if rng.random() < 0.05 else 0
            yield (f"{creditor_id}\t{debtor}\t{number}\t{due - timedelta(days=30)}\t{due}\t{amount}\t{paid}\tEUR\t"
                   f"{'partially_paid' if paid else 'open'}\t{'t' if rng.random() < 0.02 else 'f'}\tinvoice\t0\t"
                   f"{now}\t{now}\n")

    _copy(conn, "invoice", ["creditor_id", "debtor_id", "number", "issue_date", "due_date", "amount", "amount_paid",
                            "currency", "status", "disputed", "kind", "rung_reached", "created_at", "updated_at"],
          invoices())
    conn.execute("SET session_replication_role = origin")
    return n_debtors


def spell_reference(ref: str, rng: random.Random) -> str:
    how = rng.randrange(4)
    text = (ref, format_reference(ref), ref.lower(), f"{ref[:4]} {ref[4:]}")[how]
    return " ".join([rng.choice(NOISE), text] + rng.sample(NOISE, rng.randint(0, 2)))


def spell_numbers(numbers: list[str], rng: random.Random) -> str:
    how = rng.randrange(5)
    if how == 0:
        return "FACT " + " ".join(numbers)
    if how == 1:
        return "factures " + "/".join(numbers)
    if how == 2:
        return "Fact. n° " + " ".join(n[1:] if n[1].isdigit() else n for n in numbers)
    if how == 3:
        return "REGLEMENT " + " ".join(n.replace("F", "F ", 1) for n in numbers) + " MERCI"
    return " ".join(numbers).lower()


def payer_name(name: str, rng: random.Random) -> str:
    name = name.upper()
    if rng.random() < 0.3:
        name = "SARL " + name
    if rng.random() < 0.2:
        name = name[: max(8, len(name) - 3)]  # banks cut names short
    return name


def make_credits(rows, names: dict[int, str], n: int, rng: random.Random, asked: dict):
    """[(kind, credit, expected debtor, reference or None)]; a debtor reference pays what its last
    message asked for (written into `asked`), as the message told it to."""
    by_debtor: dict[int, list[tuple]] = {}
    for row in rows:
        by_debtor.setdefault(row[1], []).append(row)
    debtors = list(by_debtor)
    out, used = [], set()  # each invoice paid once: a second payment of it is another story
    for k in range(n):
        row = rows[rng.randrange(len(rows))]
        while row[0] in used:
            row = rows[rng.randrange(len(rows))]
        debtor = row[1]
        share = k % 20  # 12/20 references, 5/20 numbers, 3/20 neither
        if share < 12:
            if share < 8:
                ref, amount = invoice_reference(row[0]), row[3]
                used.add(row[0])
            else:
                ref = debtor_reference(debtor)
                oldest = [r for r in by_debtor[debtor] if r[0] not in used][:rng.randint(1, 3)]
                used.update(r[0] for r in oldest)
                asked[debtor] = tuple(r[0] for r in oldest)
                amount = sum(r[3] for r in oldest) or 100_00
            out.append(("reference", Credit(amount, "EUR", DAY, payer_name(names[debtor], rng),
                                            spell_reference(ref, rng)), debtor, ref))
        elif share < 17:
            free = [r for r in by_debtor[debtor] if r[0] not in used]
            picked = rng.sample(free, min(len(free), rng.randint(1, 3)))
            used.update(r[0] for r in picked)
            out.append(("numbers", Credit(sum(r[3] for r in picked), "EUR", DAY, payer_name(names[debtor], rng),
                                          spell_numbers([r[2] for r in picked], rng)), debtor, None))
        else:
            debtor = rng.choice(debtors)
            own = by_debtor[debtor]
            amount = (own[0][3] if share < 19 else sum(r[3] for r in own[:2]) if len(own) > 1
                      else rng.randint(1_00, 9_000_00))
            out.append(("neither", Credit(amount, "EUR", DAY, payer_name(names[debtor], rng),
                                          rng.choice(NOISE)), debtor, None))
    return out


def settle(book: Book, outcome, amount: int, balances: dict[int, int]) -> None:
    """What the ledger will do with a match: the amount over the invoices in order."""
    for invoice_id in outcome.invoice_ids:
        if amount <= 0:
            break
        paid = min(amount, balances.get(invoice_id, 0))
        if paid:
            book.settle(invoice_id, paid)
            balances[invoice_id] -= paid
            amount -= paid


def run(args) -> None:
    rng = random.Random(SEED)
    name, url = create_database(args.database_url, "relance_bench_matching")
    log(f"database {name}: {args.invoices:,} open invoices, {args.credits:,} credits")
    try:
        app = make_app(url, secrets.token_hex(16))
        from flask_migrate import upgrade

        from portal.extensions import db
        with app.app_context():
            upgrade()
            db.session.remove()
            db.engine.dispose()
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            creditor_id = copy_creditor(conn, "Bench SARL", "bench@example.com")
            n_debtors = load(conn, creditor_id, args.invoices, rng)
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"loaded {n_debtors:,} debtors and {args.invoices:,} invoices in {time.perf_counter() - t0:.1f} s")

        gc.collect()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            rows = conn.execute(BOOK_SQL, (creditor_id,)).fetchall()
            names = dict(conn.execute(DEBTOR_SQL, (creditor_id,)).fetchall())
        t_query = time.perf_counter() - t0
        asked: dict[int, tuple[int, ...]] = {}
        credits = make_credits(rows, names, args.credits, rng, asked)
        if load_book is not None:  # the service's own loading: its queries and the build, timed together
            with app.app_context():
                t0 = time.perf_counter()
                book = load_book(creditor_id)
                t_build = time.perf_counter() - t0
                db.session.remove()
            log(f"load_book (portal.services.bank_book: its queries and the build) {t_build:.2f} s; asked from "
                f"the messages (none here: debtor references go oldest first); peak RSS {rss_mb():.0f} MB "
                f"(the benchmark's rows and credits included)")
        else:
            if args.trace_memory:
                tracemalloc.start()
            t0 = time.perf_counter()
            book = Book(rows, [DebtorName(i, n) for i, n in names.items()], asked)
            t_build = time.perf_counter() - t0
            held = ""
            if args.trace_memory:
                current, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                held = f"; the Book holds {current / 2**20:.0f} MB (peak {peak / 2**20:.0f} MB built, tracemalloc on)"
            log(f"query {t_query:.2f} s ({len(rows):,} open invoices, {len(names):,} debtors; the benchmark's own: "
                f"no load_book here), Book built in {t_build:.2f} s; peak RSS {rss0:.0f} MB before the query, "
                f"{rss_mb():.0f} MB after the build (the rows and credits included){held}")
            t_build += t_query

        balances = {r[0]: r[3] for r in rows}
        del rows
        gc.collect()

        # Baseline, same run: a plain dict from reference to row, looked up for each RF credit.
        refs = {invoice_reference(i): i for i in balances}
        refs.update({debtor_reference(d): d for d in names})
        rf = [(c, ref) for kind, c, _, ref in credits if kind == "reference"]
        t0 = time.perf_counter()
        hits = sum(1 for _, ref in rf if refs.get(ref) is not None)
        t_dict = (time.perf_counter() - t0) / len(rf)
        del refs

        figures = {}
        for kind in ("reference", "numbers", "neither"):
            mine = [(c, d) for k, c, d, _ in credits if k == kind]
            statuses, right = Counter(), 0
            t0 = time.perf_counter()
            for c, expected in mine:
                outcome = match(c, book)
                if outcome.status == MATCHED:
                    settle(book, outcome, c.amount, balances)
                statuses[(outcome.status, outcome.reason)] += 1
                if os.environ.get("BENCH_SHOW") == kind and outcome.status != MATCHED and statuses["shown"] < 8:
                    statuses["shown"] += 1
                    log(f"  {c} -> {outcome}")
                right += outcome.debtor_id == expected
            elapsed = time.perf_counter() - t0
            figures[kind] = elapsed / len(mine)
            log(f"{kind:>9}: {len(mine):,} credits in {elapsed:.2f} s, {figures[kind] * 1e6:.1f} µs each; "
                f"{right / len(mine):.1%} to the expected debtor; {dict(statuses.most_common())}")
        total = sum(figures[k] * sum(1 for c in credits if c[0] == k) for k in figures)
        log(f"baseline, a plain dict lookup of the reference: {t_dict * 1e6:.2f} µs per RF credit ({hits:,} hits); "
            f"matching is {figures['reference'] / t_dict:.0f}x that for RF credits, "
            + ", ".join(f"{figures[k] / t_dict:.0f}x for {k}" for k in ("numbers", "neither")))
        log(f"all {len(credits):,} credits matched in {total:.2f} s ({total / len(credits) * 1e6:.1f} µs each); "
            f"with the queries and the build: {total + t_build:.2f} s; peak RSS {rss_mb():.0f} MB")
    finally:
        drop_database(args.database_url, name)
        log(f"dropped database {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--credits", type=int, default=100_000)
    parser.add_argument("--trace-memory", action="store_true",
                        help="measure what the Book holds with tracemalloc (its build time is then slower)")
    args = parser.parse_args()
    if not args.database_url:
        sys.exit("give --database-url or set TEST_DATABASE_URL (an admin connection: a database is created)")
    run(args)


if __name__ == "__main__":
    main()
