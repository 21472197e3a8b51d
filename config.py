"""Settings for each environment, read from environment variables (see README)."""

import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

# Values that must never reach production as a SECRET_KEY.
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development"}


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _dev_secret_key() -> str:
    """A random key kept under instance/, so dev sessions survive a restart."""
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        INSTANCE_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'billing.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    # Staff sessions end after this many idle minutes.
    STAFF_IDLE_MINUTES = _int("STAFF_IDLE_MINUTES", 15)
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    HSTS = False

    WTF_CSRF_TIME_LIMIT = 4 * 3600

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Login attempts allowed per client IP and, separately, per account.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5 per minute")

    # Patient portal: sessions end after this many idle minutes; emailed sign-in links work once
    # within PORTAL_LINK_MINUTES; document links in emails open their PDF for DOCUMENT_LINK_DAYS.
    # Sign-in link requests allowed per client IP and, separately, per email address.
    PORTAL_IDLE_MINUTES = _int("PORTAL_IDLE_MINUTES", 15)
    PORTAL_LINK_MINUTES = _int("PORTAL_LINK_MINUTES", 15)
    DOCUMENT_LINK_DAYS = _int("DOCUMENT_LINK_DAYS", 30)
    PORTAL_RATE_LIMIT = os.environ.get("PORTAL_RATE_LIMIT", "5 per 15 minutes")

    # Clinic logo upload limit; request bodies are capped a little above it.
    LOGO_MAX_BYTES = _int("LOGO_MAX_BYTES", 512 * 1024)
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)

    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    PROXY_FIX_X_FOR = _int("PROXY_FIX_X_FOR", 0)

    PASSWORD_MIN_LENGTH = 12
    PASSWORD_HASH_METHOD = "scrypt"

    # Outgoing email (billing/integrations/mail.py). The defaults reach a local debugging server.
    SMTP_HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
    SMTP_PORT = _int("SMTP_PORT", 1025)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = _bool("SMTP_STARTTLS", False)  # upgrade a plain connection (port 587)
    SMTP_SSL = _bool("SMTP_SSL", False)  # TLS from the first byte (port 465)
    SMTP_TIMEOUT = _int("SMTP_TIMEOUT", 10)  # seconds per connection step
    MAIL_FROM = os.environ.get("MAIL_FROM", "billing@localhost")

    # Stripe (billing/integrations/stripe_gateway.py). Without a secret key the card tab says
    # cards are not set up. STRIPE_API_BASE points the SDK elsewhere (localstripe in tests);
    # STRIPE_JS_URL is where pages load Stripe.js from (always Stripe's own in production).
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
    STRIPE_TIMEOUT = _int("STRIPE_TIMEOUT", 20)  # seconds per API call
    # Signed "pay this invoice" links in emailed invoices stay valid this many days.
    PAY_LINK_DAYS = _int("PAY_LINK_DAYS", 30)

    @classmethod
    def init_app(cls, app) -> None:
        """Hook for settings that need the app or must be checked at start."""


class DevelopmentConfig(Config):
    @classmethod
    def init_app(cls, app) -> None:
        if not app.config["SECRET_KEY"]:
            app.config["SECRET_KEY"] = _dev_secret_key()


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-only-not-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    RATELIMIT_STORAGE_URI = "memory://"
    # Unit tests post forms without tokens; tests of CSRF itself and the browser turn it on.
    WTF_CSRF_ENABLED = False
    # Fast hashing in tests only; every other environment uses scrypt.
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    STRIPE_SECRET_KEY = "sk_test_not_a_real_key"
    STRIPE_PUBLISHABLE_KEY = "pk_test_not_a_real_key"
    STRIPE_WEBHOOK_SECRET = "whsec_testing_only"
    STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens; tests that use Stripe start localstripe


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS = True

    @classmethod
    def init_app(cls, app) -> None:
        """Refuse to start without a real secret key."""
        key = app.config["SECRET_KEY"] or ""
        if key.strip().lower() in PLACEHOLDER_SECRETS or len(key) < 32:
            raise RuntimeError(
                "SECRET_KEY must be set to a random value of at least 32 characters "
                "in production (python -c 'import secrets; print(secrets.token_hex(32))')."
            )


def config_from_env() -> type[Config]:
    """The config class named by BILLING_ENV (development by default)."""
    name = os.environ.get("BILLING_ENV", "development")
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(f"BILLING_ENV must be one of {', '.join(CONFIGS)}, not {name!r}.") from None


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
