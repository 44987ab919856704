"""`dunning run [--date YYYY-MM-DD]` (CONTRACT §3)."""
from __future__ import annotations

import json
from datetime import date

import click

from . import day as dunning_day
from . import outbox


def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("expected YYYY-MM-DD") from None


@click.group("dunning", help="The daily dunning.")
def dunning():
    pass


@dunning.command("run")
@click.option("--date", "day", callback=_date, help="the dunning date (default: today in each creditor's time zone)")
def run(day):
    """Plan every reminder due that day, send what needs no approval, print one JSON line."""
    click.echo(json.dumps(dunning_day.run(day).as_dict()))


@dunning.command("send")
def send():
    """Send what is due in the outbox (retries included), print one JSON line."""
    result = outbox.send_pending()
    click.echo(json.dumps({"sent": result.sent, "failed": result.failed, "deferred": result.deferred}))
