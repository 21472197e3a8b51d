"""closed months enforced by the database

Revision ID: 0007
Revises: 0006
A journal entry dated in a closed month is refused by a trigger, on SQLite and PostgreSQL alike.
The services check first and say what to do; the trigger closes the race between that check and
the insert (a month closed by the bookkeeper in between) and guards against any other writer.

Create Date: 2026-11-25 19:05:00

"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

MESSAGE = "journal entries cannot be dated in a closed month"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION refuse_closed_month() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM accounting_periods
                           WHERE month = date_trunc('month', NEW.entry_date)::date AND status = 'closed') THEN
                    RAISE EXCEPTION '{MESSAGE}';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER journal_entries_open_month BEFORE INSERT ON journal_entries
            FOR EACH ROW EXECUTE FUNCTION refuse_closed_month();
        """)
    else:
        op.execute(f"""
            CREATE TRIGGER journal_entries_open_month BEFORE INSERT ON journal_entries
            WHEN EXISTS (SELECT 1 FROM accounting_periods
                         WHERE month = date(NEW.entry_date, 'start of month') AND status = 'closed')
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
        """)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER journal_entries_open_month ON journal_entries; DROP FUNCTION refuse_closed_month();")
    else:
        op.execute("DROP TRIGGER journal_entries_open_month")
