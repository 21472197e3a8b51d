"""Security headers on every response.

Every page gets a Content-Security-Policy of 'self' only. A page that loads Stripe.js (the card
payment pages) calls `allow_stripe_js()`, and only that response lets Stripe.js, its frames and
calls to Stripe's API in. No page allows inline script.
"""

from urllib.parse import urlsplit

from flask import Response, current_app, g

STRIPE_JS_ORIGIN = "https://js.stripe.com"
# Frames Stripe.js opens beside its own (3-D Secure, card authentication), when it is Stripe's.
STRIPE_FRAME_ORIGINS = (STRIPE_JS_ORIGIN, "https://hooks.stripe.com")


def _policy(script: str = "'self'", frame: str = "'none'", connect: str = "'self'") -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script}",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src {connect}",
            f"frame-src {frame}",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = _policy()


def origin(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def allow_stripe_js() -> None:
    """Let this response's page load Stripe.js (from STRIPE_JS_URL) and talk to Stripe's API."""
    g.loads_stripe_js = True


def stripe_policy() -> str:
    """'self' plus Stripe.js's origin for scripts and frames, and the Stripe API's for connections."""
    js = origin(current_app.config["STRIPE_JS_URL"])
    frames = [js, *(o for o in STRIPE_FRAME_ORIGINS if js == STRIPE_JS_ORIGIN and o != js)]
    return _policy(script=f"'self' {js}", frame=" ".join(frames),
                   connect=f"'self' {origin(current_app.config['STRIPE_API_BASE'])}")


def set_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy",
                       stripe_policy() if g.get("loads_stripe_js") else CONTENT_SECURITY_POLICY)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=(self)"
    if response.mimetype == "text/html":
        # Pages show patient data: never keep them in shared caches or the back/forward cache.
        headers.setdefault("Cache-Control", "no-store")
    if current_app.config["HSTS"]:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response
