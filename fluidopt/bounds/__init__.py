"""Bounds: fluid benchmark closed forms, completion-time lower bounds, schedule checking."""
