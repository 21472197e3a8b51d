"""Exports of the journal and the reports (Beancount, QuickBooks Online, CSV), streamed row by row."""
