"""The command line for the entities of a group (CONTRACT §3): `creditor create` for an existing
user with its password, `creditor add-user`, and `--creditor` refusing an e-mail that names
several creditors. Run for real, as tests/integration/test_cli.py does."""
from __future__ import annotations

import json

from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiKey, Creditor, CreditorMembership, CreditorUser, Debtor
from support import count
from test_cli import cli  # noqa: F401  (the fixture: `flask --app app …` in a subprocess)

HEADER = "debtor_ref,debtor_name,debtor_email,invoice_number,issue_date,due_date,amount,currency\n"


def memberships_of(email: str) -> list[int]:
    db.session.expire_all()
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.email == email))
    return sorted(db.session.scalars(select(CreditorMembership.creditor_id)
                                     .where(CreditorMembership.user_id == user.id)))


def test_a_new_creditor_user_has_the_membership_of_its_own_creditor(cli):
    r = cli("creditor", "create", "--name", "Solo", "--email", "solo@example.com", "--password", "long enough")
    assert r.code == 0, r.err
    creditor_id = json.loads(r.out)["creditor_id"]
    assert memberships_of("solo@example.com") == [creditor_id]


def test_creditor_create_with_an_existing_users_password_adds_the_creditor_to_its_group(cli, creditor):
    r = cli("creditor", "create", "--name", "Second Entity", "--email", creditor.email.upper(),
            "--password", creditor.password, "--currency", "GBP")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert set(out) == {"creditor_id", "api_key"} and out["api_key"].startswith("rl_live_")
    second = out["creditor_id"]
    assert memberships_of(creditor.email) == sorted([creditor.id, second])
    assert count(CreditorUser, CreditorUser.email == creditor.email) == 1  # the same user, no second one
    user = db.session.scalar(select(CreditorUser).where(CreditorUser.email == creditor.email))
    assert user.creditor_id == creditor.id  # still signs in to its own first
    assert db.session.get(Creditor, second).currency == "GBP"
    assert count(ApiKey, ApiKey.creditor_id == second) == 1


def test_creditor_create_with_a_wrong_password_creates_nothing(cli, creditor):
    before = (count(Creditor), count(CreditorMembership), count(ApiKey))
    r = cli("creditor", "create", "--name", "Intruder", "--email", creditor.email, "--password", "not the password")
    assert r.code != 0 and r.out.strip() == ""
    assert "already exists" in r.err and "password" in r.err and "Traceback" not in r.err
    assert (count(Creditor), count(CreditorMembership), count(ApiKey)) == before


def test_an_email_of_several_creditors_is_refused_and_the_id_is_asked_for(cli, tmp_path, creditor):
    second = json.loads(cli("creditor", "create", "--name", "Second Entity", "--email", creditor.email,
                            "--password", creditor.password).out)["creditor_id"]
    csv = tmp_path / "ledger.csv"
    csv.write_text(HEADER + "D1,Delta SA,d@example.com,F-1,2026-01-01,2026-01-31,10.00,EUR\n")
    for args in (["import", "invoices", str(csv)], ["link", "create", "D1"]):
        r = cli(*args, "--creditor", creditor.email)
        assert r.code != 0 and "Traceback" not in r.err
        assert f"belongs to several creditors: give the creditor's id ({creditor.id}, {second})" in r.err
    assert count(Debtor) == 0
    # By id, each entity is named exactly.
    r = cli("import", "invoices", str(csv), "--creditor", str(second))
    assert r.code == 0, r.err
    assert count(Debtor, Debtor.creditor_id == second) == 1 and count(Debtor, Debtor.creditor_id == creditor.id) == 0
    r = cli("link", "create", "D1", "--creditor", str(second))
    assert r.code == 0, r.err
    assert r.out.strip().startswith("http") and len(r.out.strip().splitlines()) == 1


def test_creditor_add_user_gives_an_existing_user_one_more_creditor(cli, new_creditor):
    alpha, beta = new_creditor("Alpha"), new_creditor("Beta")
    r = cli("creditor", "add-user", "--creditor", str(beta.id), "--email", alpha.email)
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"creditor_id": beta.id, "user": alpha.email, "creditors": [alpha.id, beta.id]}
    assert memberships_of(alpha.email) == sorted([alpha.id, beta.id])
    again = cli("creditor", "add-user", "--creditor", str(beta.id), "--email", alpha.email)
    assert again.code != 0 and "already belongs" in again.err and "Traceback" not in again.err
    assert count(CreditorMembership, CreditorMembership.creditor_id == beta.id) == 2


def test_creditor_add_user_makes_a_new_user_with_its_password(cli, creditor):
    r = cli("creditor", "add-user", "--creditor", str(creditor.id), "--email", "colleague@example.com")
    assert r.code != 0 and "password" in r.err and count(CreditorUser, CreditorUser.email == "colleague@example.com") == 0
    r = cli("creditor", "add-user", "--creditor", str(creditor.id), "--email", "colleague@example.com",
            "--password", "long enough")
    assert r.code == 0, r.err
    assert memberships_of("colleague@example.com") == [creditor.id]
    assert db.session.scalar(select(CreditorUser.creditor_id).where(CreditorUser.email == "colleague@example.com")) \
        == creditor.id
