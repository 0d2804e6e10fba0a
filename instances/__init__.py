"""Shipped data: deployments, workload specs and real traces (shipped as fluidopt.instances)."""
