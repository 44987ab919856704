"""Portal routes for disputes (being built in this session: placeholders answer 404)."""
from __future__ import annotations

from ..services import NotFound
from . import bp
from .views import portal_required


@bp.get("/portal/invoices/<path:number>/dispute")
@portal_required
def dispute_form(number):
    raise NotFound("not yet")


@bp.get("/portal/disputes/<int:dispute_id>")
@portal_required
def dispute(dispute_id):
    raise NotFound("not yet")
