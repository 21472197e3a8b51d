"""The schema comes only from the migrations: they must match the models and run both ways."""

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from billing.extensions import db
from tests.conftest import _drop_database, _fresh_database, _migrated_app


def test_models_match_the_migrations(app):
    diff = compare_metadata(MigrationContext.configure(db.session.connection()), db.metadata)
    assert diff == []


def test_migrations_downgrade_and_upgrade_again(server_url, database_url, tmp_path_factory):
    url = _fresh_database(server_url or database_url, tmp_path_factory)
    app = _migrated_app(url)
    try:
        with app.app_context():
            flask_migrate.downgrade(revision="base")
            flask_migrate.upgrade()
            assert db.session.scalar(db.text("SELECT count(*) FROM accounts")) > 0
            db.engine.dispose()
    finally:
        _drop_database(url, server_url or database_url)
