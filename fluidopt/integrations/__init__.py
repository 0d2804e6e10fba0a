"""Bridges from fluidopt's policies to serving engines (optional extras)."""
