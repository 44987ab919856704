"""Back office: the reports. The cash forecast beside the DSO trend, and what each reminder
achieves. Views parse, call the services and render; the charts are drawn on the server."""
from __future__ import annotations

from flask import g, render_template, request
from babel.dates import format_date
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from ..domain import charts
from ..domain.calendar import today_for
from ..services import Invalid, effectiveness, forecast
from .blueprint import bp

#: the forecast page's choices of horizon, in weeks
HORIZONS = (4, 8, 12, 26, 52)


def _weeks() -> int:
    raw = request.args.get("weeks", "")
    return int(raw) if raw.isdigit() and int(raw) in HORIZONS else 12


@bp.get("/reports")
@login_required
def reports_page():
    today, weeks = today_for(g.creditor), _weeks()
    expected = forecast.weekly_minor(g.creditor, weeks, today)
    trend = forecast.dso_trend(g.creditor, today)
    slot = (640 - 96) // weeks
    return render_template(
        "creditor/reports.html", today=today, weeks=weeks, horizons=HORIZONS, expected=expected,
        total=sum(amount for _, amount in expected),
        forecast_chart=charts.column_chart([(start.isoformat(), amount) for start, amount in expected],
                                           gap=max(min(16, slot // 4), 1)),
        label_every=max(1, weeks // 6), trend=trend,
        week_labels=[format_date(start, "d MMM", locale=str(get_locale())) for start, _amount in expected],
        month_labels=[format_date(end, "MMM yy", locale=str(get_locale())) for end, _dso in trend],
        # DSO in tenths of a day: the chart's values are whole numbers
        dso_chart=charts.column_chart([(end.isoformat(), round(dso * 10)) for end, dso in trend], gap=8))


@bp.get("/reports/dunning")
@login_required
def dunning_report_page():
    today = today_for(g.creditor)
    raw_from, raw_to = request.args.get("from") or None, request.args.get("to") or None
    errors = {}
    try:
        start, end = effectiveness.period(raw_from, raw_to, today)
    except Invalid as e:  # the page shows the default period, and says why
        errors[e.field] = (_("Enter a start date on or before the end date.") if e.message == effectiveness.ORDER
                           else _("Enter a date."))
        start, end = effectiveness.period(None, None, today)
    steps = effectiveness.by_step(g.creditor, start, end)
    # Narrower than the dashboard's: the step names and amounts stay legible at 390 px.
    chart = charts.row_chart([(f"{s.step}:{s.channel}", s.collected_within_30_days) for s in steps], width=520,
                             left=200, right=110)
    return render_template("creditor/reports_dunning.html", steps=steps, start=start, end=end, chart=chart,
                           errors=errors, typed={"from": (raw_from or "")[:10], "to": (raw_to or "")[:10]},
                           totals=effectiveness.totals(steps)), 422 if errors else 200
