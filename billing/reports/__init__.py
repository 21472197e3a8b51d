"""Read-only queries (SQL aggregates) that reports and documents are built from. Nothing here writes."""
