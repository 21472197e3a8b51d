"""Triggers that make a table refuse UPDATE and DELETE, on SQLite and PostgreSQL alike."""

from alembic import op


def create_append_only_triggers(table, *, allow_update=False):
    """Refuse DELETE on `table`, and UPDATE too unless `allow_update`."""
    message = f"{table} rows cannot be changed or deleted"
    verbs = ["DELETE"] if allow_update else ["UPDATE", "DELETE"]
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION refuse_change_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{message}'; END $$;
            CREATE TRIGGER {table}_append_only BEFORE {' OR '.join(verbs)} ON {table}
            FOR EACH ROW EXECUTE FUNCTION refuse_change_{table}();
        """)
    else:
        for verb in verbs:
            op.execute(f"""
                CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
                BEGIN SELECT RAISE(ABORT, '{message}'); END;
            """)


def drop_append_only_triggers(table):
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}; DROP FUNCTION refuse_change_{table}();")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
