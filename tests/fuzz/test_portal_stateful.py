"""Hypothesis stateful test of the debtor portal: three debtors (two of one creditor, one of
another with the same reference and invoice numbers) open their links, browse every page with
invoice numbers and ids that are their own, another debtor's, garbage or path tricks, and post
every form with random data. Invariants: never a 5xx, no page ever carries another debtor's
(or the other creditor's) marker, and a form carrying a NUL or another unstorable character
answers 422 wherever it is posted (issue 15 item 3)."""
from __future__ import annotations

import os
import re
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from portal.extensions import db
from portal.models import Dispute, PaymentAttempt
from portal.services.checks import UNSTORABLE
from support import Api

import collections
SEEN = collections.Counter()
STEPS = int(os.environ.get("FUZZ_STEPS", "40"))
EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "40"))

# Each debtor: (creditor index, ref, name marker, e-mail marker, invoice numbers)
DEBTORS = {
    "a1": (0, "D1", "Quokka-Marker-One", "quokka-one@a.example", ["F-1", "F-2"]),
    "a2": (0, "D2", "Wombat-Marker-Two", "wombat-two@a.example", ["F-3", "2026/07"]),
    "b1": (1, "D1", "Numbat-Marker-Three", "numbat-three@b.example", ["F-1", "F-9"]),
}
CREDITOR_MARKERS = ("Creditor-Kestrel-A", "Creditor-Osprey-B")


@pytest.fixture
def app_config(providers_config):
    """Both payment providers configured (fakes): the pay and mandate forms do real work."""
    return providers_config


@pytest.fixture
def world(app, make_app, new_creditor, app_config):
    client = make_app(**app_config).test_client()
    creditors = [new_creditor(CREDITOR_MARKERS[0], partial_payment_min=1000), new_creditor(CREDITOR_MARKERS[1])]
    for key, (c, ref, name, email, numbers) in DEBTORS.items():
        api = Api(client, creditors[c])
        assert api.put(f"/debtors/{ref}", json={"name": name, "email": email, "language": "en"}).status_code == 201
        for i, number in enumerate(numbers):
            r = api.put(f"/invoices/{number}", json={"debtor_ref": ref, "issue_date": "2026-01-01",
                                                     "due_date": f"2026-0{i + 2}-01", "amount": "250.00",
                                                     "currency": "EUR"})
            assert r.status_code == 201, r.json
    return creditors


def markers_of(key: str) -> set[str]:
    c, _ref, name, email, _numbers = DEBTORS[key]
    return {name, email, CREDITOR_MARKERS[c]}


ALL_NUMBERS = sorted({n for d in DEBTORS.values() for n in d[4]})
TRICKS = ["../F-1", "F-1/../../F-3", "..%2FF-3", "%2e%2e/F-3", "F-1.pdf", "F-1%00", "F-1\x00", "F-1/", "/F-3",
          "F-3?x=1", "F-1#x", "é", "F-1 ", " F-1", "%", "%%", "\\F-3", "F-1;F-3", "*", "F-%", "F_1", "a" * 300,
          "\u202eF-1", "F-1\r\nX-Injected: 1", "<script>", "{{7*7}}"]
numbers = st.one_of(st.sampled_from(ALL_NUMBERS), st.sampled_from(TRICKS),
                    st.text(max_size=20), st.from_regex(r"[A-Za-z0-9._/\-]{1,12}", fullmatch=True))
form_text = st.one_of(st.text(max_size=60), st.sampled_from(["", " ", "0", "-1", "1e9", "12,50", "2026-13-45",
                                                             "2026-03-01", "NaN", "∞", "\x00", "9" * 40,
                                                             "A\x00B", "2026-03-01\x00", "x\x1by"]))
dates = st.one_of(st.dates().map(str), form_text)


def path_of(number: str) -> str:
    """Usually quoted as a browser would; sometimes sent raw, as an attacker would."""
    return quote(number, safe="/")


class PortalMachine(RuleBasedStateMachine):
    app = None  # set by the test

    @initialize()
    def start(self):
        self.client = self.app.test_client()
        self.who = None  # which debtor the session belongs to (None: nobody)
        self.disputes: dict[str, set[int]] = {k: set() for k in DEBTORS}
        self.attempts: dict[str, set[int]] = {k: set() for k in DEBTORS}
        self.last = None
        self.open_link("a1")

    # --- helpers -------------------------------------------------------------------------
    def _check(self, r, what):
        self.last = (what, r.status_code)
        SEEN[(what.split(" ")[0] + " " + re.sub(r"/portal/(invoices|disputes|payments)/[^/]*", r"/portal/\1/*",
                                                 what.split(" ")[1].split("?")[0]), r.status_code)] += 1
        assert r.status_code < 500, (what, r.status_code, r.get_data(as_text=True)[:2000])
        if self.who is not None and r.mimetype in ("text/html", "application/json", "text/plain"):
            body = r.get_data(as_text=True)
            for other in DEBTORS:
                if other != self.who:
                    leaked = markers_of(other) - markers_of(self.who)
                    found = [m for m in leaked if m in body]
                    assert not found, (what, self.who, "sees", found)
        location = r.headers.get("Location", "")
        if location:
            assert location.startswith("/") and not location.startswith("//") or \
                location.startswith(("http://portal.test/", "http://localhost/", "http://127.0.0.1")), location
            m = re.search(r"/portal/disputes/(\d+)", location)
            if m and self.who:
                self.disputes[self.who].add(int(m.group(1)))
            m = re.search(r"/portal/payments/(\d+)", location)
            if m and self.who:
                self.attempts[self.who].add(int(m.group(1)))
        return r

    def get(self, path, **kw):
        return self._check(self.client.get(path, **kw), f"GET {path}")

    def post(self, path, data):
        r = self._check(self.client.post(path, data=data), f"POST {path} {data!r}")
        values = [v for v in data.values() for v in (v if isinstance(v, list) else [v])]
        if any(UNSTORABLE.search(v) for v in values) and self._routed(path):
            SEEN["unstorable refused"] += r.status_code == 422
            assert r.status_code == 422, (path, data, r.status_code)
        return r

    def _routed(self, path) -> bool:
        """The path names a form route (an unknown one is a 404 before any check)."""
        try:
            self.app.url_map.bind("portal.test").match(unquote(path.split("?")[0]), "POST")
        except Exception:  # noqa: BLE001 - NotFound, MethodNotAllowed, RequestRedirect
            return False
        return True

    # --- rules ---------------------------------------------------------------------------
    @rule(key=st.sampled_from(sorted(DEBTORS)))
    def open_link(self, key):
        from portal.services import ledger, links
        c, ref, *_ = DEBTORS[key]
        with self.app.app_context():
            debtor = ledger.get_debtor(self.creditors[c].id, ref)
            url = links.issue(debtor, issued_by="creditor").url
        r = self.client.get(url.replace("http://portal.test", ""))
        assert r.status_code == 303, r.status_code
        self.who = key
        self.get("/portal/")

    @rule(token=st.one_of(st.text(max_size=80), st.from_regex(r"[A-Za-z0-9._\-]{10,120}", fullmatch=True)),
          same_browser=st.booleans())
    def open_bad_link(self, token, same_browser):
        client = self.client if same_browser else self.app.test_client()
        r = client.get("/l/" + quote(token, safe=""))
        assert r.status_code in (404, 308), r.status_code
        body = r.get_data(as_text=True)
        assert not [m for key in DEBTORS for m in markers_of(key) if m in body]  # names nobody
        if same_browser and self.client.get("/portal/").status_code == 401:
            self.who = None  # a refused link ends the session (an unrouted /l/ path leaves it alone)

    @rule(page=st.sampled_from(["/portal/", "/portal/statement", "/portal/statement.pdf", "/portal/mandate/return"]),
          frm=st.none() | dates, to=st.none() | dates)
    def view_page(self, page, frm, to):
        query = {k: v for k, v in (("from", frm), ("to", to)) if v is not None}
        self.get(page, query_string=query, headers={"HX-Request": "true"} if frm == "" else {})

    @rule(number=numbers, what=st.sampled_from([".pdf", "/pay", "/promise", "/dispute"]))
    def view_invoice(self, number, what):
        self.get(f"/portal/invoices/{path_of(number)}{what}")

    # Draws never depend on state (a replayed example must draw the same): an index or a raw id.
    @rule(owner=st.sampled_from(sorted(DEBTORS)), pick=st.integers(0, 99) | st.integers(0, 2**31).map(str),
          attachment=st.integers(0, 50))
    def view_dispute(self, owner, pick, attachment):
        dispute_id = self._pick(self.disputes[owner], pick)
        r = self.get(f"/portal/disputes/{dispute_id}")
        if owner != self.who and dispute_id in self.disputes[owner]:
            assert r.status_code in (401, 404), r.status_code
        self.get(f"/portal/disputes/{dispute_id}/attachments/{attachment}")

    @rule(owner=st.sampled_from(sorted(DEBTORS)), pick=st.integers(0, 99) | st.integers(0, 2**31).map(str),
          what=st.sampled_from(["", "/cancel", "/resume"]))
    def view_payment(self, owner, pick, what):
        """GETs change nothing (the cancel page is Stripe's cancel_url): an attempt keeps its status."""
        attempt_id = self._pick(self.attempts[owner], pick)
        before = self._attempt_status(attempt_id)
        r = self.get(f"/portal/payments/{attempt_id}{what}")
        if owner != self.who and attempt_id in self.attempts[owner]:
            assert r.status_code in (401, 404), r.status_code
        assert self._attempt_status(attempt_id) == before, (what, attempt_id)

    @rule(owner=st.sampled_from(sorted(DEBTORS)), pick=st.integers(0, 99) | st.integers(0, 2**31).map(str))
    def cancel_payment(self, owner, pick):
        attempt_id = self._pick(self.attempts[owner], pick)
        before = self._attempt_status(attempt_id)
        r = self.post(f"/portal/payments/{attempt_id}/cancel", {})
        if owner != self.who and attempt_id in self.attempts[owner]:
            assert r.status_code in (401, 404), r.status_code
            assert self._attempt_status(attempt_id) == before  # another debtor's payment is left alone

    def _attempt_status(self, attempt_id):
        with self.app.app_context():
            attempt = db.session.get(PaymentAttempt, attempt_id) if attempt_id < 2**31 else None
            return attempt and attempt.status

    @rule(number=numbers, date=dates, amount=st.none() | form_text)
    def promise(self, number, date, amount):
        data = {"date": date} if amount is None else {"date": date, "amount": amount}
        self.post(f"/portal/invoices/{path_of(number)}/promise", data)

    @rule(number=numbers, reason=st.one_of(st.sampled_from(["amount", "not_received", "quality", "other",
                                                            "duplicate"]), form_text),
          comment=form_text)
    def dispute(self, number, reason, comment):
        self.post(f"/portal/invoices/{path_of(number)}/dispute", {"reason": reason, "comment": comment})

    @rule(owner=st.sampled_from(sorted(DEBTORS)), body=form_text, pick=st.integers(0, 99))
    def dispute_reply(self, owner, body, pick):
        dispute_id = self._pick(self.disputes[owner], pick)
        with self.app.app_context():
            before = db.session.get(Dispute, dispute_id)
            count = len(before.messages) if before is not None and hasattr(before, "messages") else None
        r = self.post(f"/portal/disputes/{dispute_id}/messages", {"body": body})
        if owner != self.who and dispute_id in self.disputes[owner]:
            assert r.status_code in (401, 404), r.status_code
            with self.app.app_context():
                after = db.session.get(Dispute, dispute_id)
                assert count is None or len(after.messages) == count  # nothing added to another's thread

    @rule(invoices=st.lists(numbers, max_size=3), only=st.none() | numbers,
          method=st.sampled_from(["card", "direct_debit", "cheque", ""]), amount=st.none() | form_text)
    def pay(self, invoices, only, method, amount):
        data = {"invoice": invoices, "method": method}
        if only is not None:
            data["only"] = only
        if amount is not None:
            data["amount"] = amount
        r = self.post("/portal/pay", data)
        if r.status_code == 303 and "/c/pay/" in r.headers.get("Location", ""):
            with self.app.app_context():
                sid = r.headers["Location"].rsplit("/", 1)[1]
                attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.provider_ref == sid))
                assert attempt is not None
                owner_id = self._debtor_id(self.who)
                assert attempt.debtor_id == owner_id  # only the session's own invoices are charged
                self.attempts[self.who].add(attempt.id)

    @rule(path=st.sampled_from(["/portal/mandate", "/portal/mandate/cancel", "/portal/logout"]))
    def post_plain(self, path):
        r = self.post(path, {})
        if path == "/portal/logout" and r.status_code == 200:
            self.who = None

    @staticmethod
    def _pick(known: set[int], pick) -> int:
        if isinstance(pick, str):  # any id at all
            return int(pick)
        ids = sorted(known) or [1]
        return ids[pick % len(ids)]

    def _debtor_id(self, key):
        from portal.services import ledger
        c, ref, *_ = DEBTORS[key]
        return ledger.get_debtor(self.creditors[c].id, ref).id

    @invariant()
    def signed_out_sees_nothing(self):
        if self.who is None and getattr(self, "client", None) is not None:
            r = self.client.get("/portal/")
            assert r.status_code == 401
            body = r.get_data(as_text=True)
            for key in DEBTORS:
                assert not [m for m in markers_of(key) if m in body]


@pytest.mark.parametrize("engine_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="PostgreSQL tests need TEST_DATABASE_URL"))])
def test_portal_state_machine(world, make_app, app_config, engine_name):
    PortalMachine.app = make_app(**app_config)
    PortalMachine.creditors = world
    SEEN.pop("unstorable refused", None)
    run_state_machine_as_test(PortalMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        derandomize=not os.environ.get("FUZZ_RANDOM"), suppress_health_check=list(HealthCheck)))
    assert SEEN["unstorable refused"], "no form was posted with a NUL: the strategies lost them"
