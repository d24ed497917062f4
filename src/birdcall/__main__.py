"""`python -m birdcall`: the birdcall command line."""

from .cli import main

main()
