"""Command line (CONTRACT §3): `flask --app app …` or the `relance` console script."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from werkzeug.serving import run_simple

from dunning_jobs import day as dunning_day
from dunning_jobs.cli import dunning
from dunning_jobs.scheduler import start_in_process

from .extensions import db
from .models import Creditor, Debtor
from .services import (ServiceError, checks, creditor_users, demo, ledger, links, memberships, rates, reconciliation,
                       tenants)
from .services.imports import import_csv


def _creditor(email: str):
    """--creditor: a creditor user's e-mail, or the creditor's id (for users of several creditors)."""
    given = email.strip()
    if given.isascii() and given.isdigit() and len(given) < 19:
        creditor = db.session.get(Creditor, int(given))
    else:
        several = memberships.several_creditors(email)
        if several:  # the e-mail alone would pick one of them for the operator
            raise click.ClickException(f"{email.strip().lower()} belongs to several creditors: give the creditor's id "
                                       f"({', '.join(map(str, several))})")
        creditor = tenants.creditor_by_email(email)
    if creditor is None:
        raise click.ClickException(f"no creditor with e-mail {email}")
    return creditor


def _percent(basis_points: int) -> str:
    """215 -> "2.15", as the ECB publishes it and `rates set --rate` takes it."""
    return f"{basis_points // 100}.{basis_points % 100:02d}"


def register(app: Flask) -> None:
    creditor_group = click.Group("creditor", help="Manage creditors.")
    link_group = click.Group("link", help="Portal links.")
    import_group = click.Group("import", help="Import data.")
    rates_group = click.Group("rates", help="The ECB reference rates of late-payment interest, shared by every creditor.")

    @creditor_group.command("create")
    @click.option("--name", required=True)
    @click.option("--email", required=True)
    @click.option("--password", required=True)
    @click.option("--currency", default="EUR", show_default=True)
    @click.option("--timezone", default="Europe/Paris", show_default=True)
    @click.option("--language", default="fr", show_default=True, type=click.Choice(["fr", "en"]))
    @click.option("--iban", default=None)
    @click.option("--bic", default=None)
    def creditor_create(name, email, password, currency, timezone, language, iban, bic):
        """Create a creditor with its first user and API key (printed once, as JSON). With the e-mail
        and password of an existing user, the new creditor joins that user's group: the user may
        switch to it in the back office."""
        try:
            creditor, key = tenants.create_creditor(name=name, email=email, password=password, currency=currency,
                                                    timezone=timezone, language=language, iban=iban, bic=bic)
        except ServiceError as e:
            raise click.ClickException(f"{e.field}: {e.message}" if e.field else e.message)
        click.echo(json.dumps({"creditor_id": creditor.id, "api_key": key}))

    @creditor_group.command("add-user")
    @click.option("--creditor", "creditor_ref", required=True, help="the creditor's id (or a user's e-mail)")
    @click.option("--email", required=True, help="the user's e-mail")
    @click.option("--password", default=None, help="for a new user only: its password")
    def creditor_add_user(creditor_ref, email, password):
        """Let a back-office user act for one more creditor (a new e-mail becomes a user of it)."""
        creditor = _creditor(creditor_ref)
        try:
            user = memberships.add_user(creditor, email, password)
        except ServiceError as e:
            raise click.ClickException(f"{e.field}: {e.message}" if e.field else e.message)
        click.echo(json.dumps({"creditor_id": creditor.id, "user": user.email,
                               "creditors": [c.id for c in memberships.creditors_of(user)]}))

    @creditor_group.command("set-password")
    @click.option("--email", required=True, help="the user's e-mail")
    @click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=True)
    def creditor_set_password(email, password):
        """Give a back-office user a new password; every session the user had is signed out."""
        try:
            creditor_users.set_password(email, password)
        except ServiceError as e:
            raise click.ClickException(f"{e.field}: {e.message}" if e.field else e.message)
        click.echo(f"New password set for {email.strip().lower()}; its sessions are signed out.")

    @link_group.command("create")
    @click.argument("debtor_ref")
    @click.option("--creditor", "email", required=True, help="the creditor's e-mail (or id)")
    def link_create(debtor_ref, email):
        """Print a new portal link for a debtor."""
        try:
            debtor = ledger.get_debtor(_creditor(email).id, debtor_ref)
        except ServiceError as e:
            raise click.ClickException(f"debtor {debtor_ref}: {e.message}")
        click.echo(links.issue(debtor, issued_by="cli").url)

    @import_group.command("invoices")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--creditor", "email", required=True, help="the creditor's e-mail (or id)")
    def import_invoices(file: Path, email):
        """Upsert debtors and invoices from a CSV file; imports nothing if any row is bad."""
        creditor = _creditor(email)
        data = file.read_bytes()
        with click.progressbar(length=max(1, data.count(b"\n")), label="Importing", file=sys.stderr) as bar:
            done = [0]

            def progress(n):
                bar.update(n - done[0])
                done[0] = n
            result = import_csv(creditor, data, actor="import", progress=progress)
        if result.errors:
            for err in result.errors[:200]:
                click.echo(str(err), err=True)
            if len(result.errors) > 200:
                click.echo(f"… and {len(result.errors) - 200} more", err=True)
            raise click.ClickException(f"{len(result.errors)} bad row(s): nothing was imported")
        click.echo(json.dumps({"rows": result.rows, "debtors_created": result.debtors_created,
                               "invoices_created": result.invoices_created,
                               "invoices_updated": result.invoices_updated}))
        if not creditor.hold_dunning:  # offered after an import: see what the first runs send first
            click.echo(f"To check what the next dunning runs will send before it goes, hold each day: "
                       f"{app.config['PORTAL_BASE_URL']}/app/day", err=True)

    @import_group.command("bank")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--creditor", "email", required=True, help="the creditor's e-mail (or id)")
    def import_bank(file: Path, email):
        """Import a bank statement (camt.053/054, CFONB 120, MT940, OFX) and match its credits;
        records nothing of a file that cannot be read."""
        creditor = _creditor(email)
        with file.open("rb") as stream, click.progressbar(length=max(1, file.stat().st_size), label="Importing",
                                                          file=sys.stderr) as bar:
            done = [0]

            def progress(n):
                bar.update(n - done[0])
                done[0] = n
            try:
                result = reconciliation.import_statement(creditor, stream, file.name, actor="cli", progress=progress)
            except ServiceError as e:
                raise click.ClickException(f"{file.name}: {e.message}")
        click.echo(json.dumps(result.as_dict()))

    @rates_group.command("list")
    def rates_list():
        """Print the ECB reference table, newest first: one half-year a line, its first day and the rate in percent."""
        for row in rates.table():
            click.echo(f"{row.effective_from.isoformat()}  {_percent(row.rate_bp)}")

    @rates_group.command("set")
    @click.option("--from", "effective_from", required=True, metavar="YYYY-MM-DD",
                  help="the half-year's first day: 1 January or 1 July")
    @click.option("--rate", required=True, metavar="PERCENT", help="the ECB main refinancing rate, e.g. 2.15")
    def rates_set(effective_from, rate):
        """Add or correct the ECB rate of a half-year (the operator's job: creditors only read the table)."""
        options = {"effective_from": "--from", "rate": "--rate"}
        try:
            day = checks.check_date(effective_from, "effective_from")
            previous = rates.set_reference_rate(day, rate)
        except ServiceError as e:
            raise click.ClickException(f"{options.get(e.field, e.field)}: {e.message.removeprefix(f'{e.field} ')}")
        now = next(r.rate_bp for r in rates.table() if r.effective_from == day)
        click.echo(json.dumps({"effective_from": day.isoformat(), "rate": _percent(now),
                               "previous": None if previous is None else _percent(previous)}))

    @click.command("demo")
    @click.option("--if-empty", is_flag=True, help="seed only when the database has no creditor yet")
    def demo_command(if_empty):
        """Seed the demo creditor and its last five weeks (idempotent); print how to get in."""
        if if_empty and demo.existing() is None and db.session.scalar(db.select(Creditor.id).limit(1)):
            click.echo("Database already has creditors: no demo data seeded.")
            return
        creditor, created = demo.seed(run_day=lambda c, day: dunning_day.run(day, creditor_ids=[c.id]))
        base = app.config["PORTAL_BASE_URL"]
        lines = [("Demo data created." if created else "Demo data already present."),
                 f"  Back office: {base}/app/login  e-mail {demo.EMAIL}  password {demo.PASSWORD}"]
        for language, label in (("en", "English"), ("fr", "French")):  # the portal as each reader sees it
            debtor = db.session.scalar(db.select(Debtor).where(Debtor.creditor_id == creditor.id,
                                                               Debtor.language == language).order_by(Debtor.ref))
            if debtor is not None:
                lines.append(f"  Portal of {debtor.name} ({label}): {links.issue(debtor, issued_by='cli').url}")
        click.echo("\n".join(lines))

    @click.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True)
    def serve(host, port):
        """Serve the app with the daily dunning running in-process (no broker needed)."""
        if not app.config["CELERY_BROKER_URL"]:
            start_in_process(app)
        # Flask refuses app.run() inside its own CLI; serve with Werkzeug directly.
        click.echo(f" * Serving Relance on http://{host}:{port}")
        run_simple(host, port, app, threaded=True, use_reloader=False)

    for command in (creditor_group, link_group, import_group, rates_group, demo_command, dunning, serve):
        app.cli.add_command(command)
