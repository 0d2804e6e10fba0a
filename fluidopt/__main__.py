"""``python -m fluidopt``: the same command line as the ``fluidopt`` script."""

from fluidopt.cli import main

if __name__ == "__main__":
    main()
