"""The edges to the outside world: SMTP mail (and, later, Stripe). No database access here."""
