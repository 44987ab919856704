"""Settings from the environment (CONTRACT §2), validated once at start-up."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from dotenv import load_dotenv


class ConfigError(RuntimeError):
    pass


def _secret_key(instance: Path) -> str:
    # Generated once and kept, so portal links and sessions survive restarts.
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def _int(env: dict, name: str, default: int, low: int = 1) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise ConfigError(f"{name} must be >= {low}")
    return value


def load(instance_path: str, overrides: dict | None = None) -> dict:
    """Return Flask config keys from os.environ (and .env), then `overrides`."""
    load_dotenv(Path.cwd() / ".env", override=False)
    env = {**os.environ, **{k: str(v) for k, v in (overrides or {}).items() if isinstance(v, (str, int))}}
    instance = Path(instance_path)
    db_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'relance.db'}"
    if db_url.startswith("postgres://"):
        db_url = "postgresql://" + db_url[len("postgres://"):]
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url[len("postgresql://"):]
    base_url = env.get("PORTAL_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    if urlparse(base_url).scheme not in ("http", "https"):
        raise ConfigError("PORTAL_BASE_URL must be an http(s) URL")
    smtp_url = env.get("SMTP_URL") or None
    if smtp_url and urlparse(smtp_url).scheme not in ("smtp", "smtp+starttls", "smtps"):
        raise ConfigError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    gc_env = env.get("GOCARDLESS_ENVIRONMENT", "sandbox")
    if gc_env not in ("sandbox", "live"):
        raise ConfigError("GOCARDLESS_ENVIRONMENT must be sandbox or live")
    cfg = {
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SECRET_KEY": env.get("SECRET_KEY") or _secret_key(instance),
        "PORTAL_BASE_URL": base_url,
        "PORTAL_LINK_MAX_AGE_DAYS": _int(env, "PORTAL_LINK_MAX_AGE_DAYS", 45),
        "SMTP_URL": smtp_url,
        "MAIL_FROM": env.get("MAIL_FROM", "Relance <no-reply@localhost>"),
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "GOCARDLESS_ACCESS_TOKEN": env.get("GOCARDLESS_ACCESS_TOKEN") or None,
        "GOCARDLESS_WEBHOOK_SECRET": env.get("GOCARDLESS_WEBHOOK_SECRET") or None,
        "GOCARDLESS_ENVIRONMENT": gc_env,
        "GOCARDLESS_BASE_URL": env.get("GOCARDLESS_BASE_URL") or None,
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID") or None,
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN") or None,
        "TWILIO_FROM": env.get("TWILIO_FROM") or None,
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE") or None,
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or None,
        # Rate-limit counters: Redis when a broker (or an explicit store) is configured.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI")
        or (env.get("CELERY_BROKER_URL") if (env.get("CELERY_BROKER_URL") or "").startswith("redis") else "memory://"),
        "RATELIMIT_ENABLED": env.get("RATELIMIT_ENABLED", "1") != "0",
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto to believe (0: none, the
        # socket's peer is the client). Set it to the number of proxies exactly: one more and a
        # client could forge its address past the rate limits.
        "TRUSTED_PROXY_HOPS": _int(env, "TRUSTED_PROXY_HOPS", 0, low=0),
        # A Redis outage must not take the portal down: count in memory meanwhile.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Debtor and creditor sessions are bounded: a shared office PC must not stay logged in.
        "PERMANENT_SESSION_LIFETIME": _int(env, "SESSION_LIFETIME_MINUTES", 120) * 60,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": base_url.startswith("https://"),
        # Large enough for an invoice PDF in base64, small enough to refuse abuse early.
        "MAX_CONTENT_LENGTH": _int(env, "MAX_CONTENT_LENGTH", 16 * 1024 * 1024),
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "fr",
        "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
    }
    for key, value in (overrides or {}).items():
        cfg[key] = value
    return cfg
