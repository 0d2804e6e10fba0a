"""Formulations: fluid LP, completion-time MIP, threshold programs (shipped as fluidopt.models)."""
