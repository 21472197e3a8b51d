"""Billing and financing tracker for self-pay clinics."""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config, config_from_env


def create_app(config_class: type[Config] | None = None) -> Flask:
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    config_class = config_class or config_from_env()
    app.config.from_object(config_class)
    config_class.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_errorhandlers(app)
    register_templating(app)
    register_cli(app)
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"], x_proto=1)
    return app


def register_extensions(app: Flask) -> None:
    from billing import models  # noqa: F401  (registers the tables)
    from billing.extensions import csrf, db, limiter, login_manager, migrate

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A file has no server that could drop the connection: no ping before each checkout.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_pre_ping": False}
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str):
        user_pk, _, epoch = user_id.partition(".")
        user = db.session.get(models.User, int(user_pk)) if user_pk.isdigit() else None
        if user is None or not user.active or str(user.session_epoch) != epoch:
            return None
        return user


def register_blueprints(app: Flask) -> None:
    from billing import admin, auth, books, estimates, frontdesk, invoices, outbox, patients, payments, webhooks

    for module in (auth, admin, frontdesk, patients, invoices, payments, books, outbox, estimates, webhooks):
        app.register_blueprint(module.bp)
    from billing.portal import bp as portal_bp  # the patient portal (its own sessions, see billing/access.py)
    app.register_blueprint(portal_bp)
    from billing.pay import bp as pay_bp  # the patient's pay-by-link pages (public)
    app.register_blueprint(pay_bp)


def register_request_hooks(app: Flask) -> None:
    from billing.access import enforce_access
    from billing.security import set_security_headers
    from billing.outbox.delivery import deliver_after_response

    app.before_request(enforce_access)
    app.after_request(set_security_headers)
    app.after_request(deliver_after_response)  # mail queued by the request goes out after the response


def register_errorhandlers(app: Flask) -> None:
    from billing.errors import register

    register(app)


def register_templating(app: Flask) -> None:
    from billing.money import format_money
    from billing.timeutil import to_clinic_time

    app.jinja_env.add_extension("jinja2.ext.do")
    app.add_template_filter(format_money, "money")

    @app.template_filter("localtime")
    def localtime(moment):
        """A UTC timestamp shown in the clinic's timezone."""
        return to_clinic_time(moment).strftime("%Y-%m-%d %H:%M %Z")

    @app.context_processor
    def inject_clinic():
        from sqlalchemy.exc import SQLAlchemyError

        from billing.services.settings import get_settings

        try:
            return {"clinic": get_settings()}
        except SQLAlchemyError:  # an error page must render even when the database is down
            return {"clinic": None}


def register_cli(app: Flask) -> None:
    from billing.cli import billing_cli

    app.cli.add_command(billing_cli)
