"""The reproduction notebooks (jupytext percent-format scripts); see fluidopt.reproduce."""
