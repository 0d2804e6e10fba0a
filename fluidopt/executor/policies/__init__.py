"""Scheduling policies; importing this package fills the registry."""
