"""Response headers every page carries (CSP without inline script, framing, sniffing)."""
from __future__ import annotations

from flask import Flask, request

from . import gateways

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'{providers}; frame-ancestors 'none'")


def install(app: Flask) -> None:
    policy = []

    @app.after_request
    def headers(response):
        h = response.headers
        if not policy:
            # A form posted to us is redirected to the provider's hosted page: Chromium checks
            # that redirect against form-action, so the providers' origins must be named.
            policy.append(CSP.format(providers="".join(f" {o}" for o in gateways.hosted_origins())))
        h.setdefault("Content-Security-Policy", policy[0])
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")  # portal URLs must never leak
        h.setdefault("X-Frame-Options", "DENY")
        if request.is_secure or app.config["SESSION_COOKIE_SECURE"]:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.path.startswith(("/portal", "/l/", "/app")):
            h["Cache-Control"] = "no-store"
        return response
