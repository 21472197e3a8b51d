"""Benchmarks of the service layer; run by hand (see bench/README.md), never by pytest."""
