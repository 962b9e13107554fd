"""Prometheus metrics of the hub (OPS §7): categories and templates stored in the
database, process metrics from a per-app registry, database metrics from one call."""
