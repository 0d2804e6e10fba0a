"""Schedules that scale: list schedules and their improvement (unit-time model)."""
