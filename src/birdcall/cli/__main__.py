"""`python -m birdcall.cli` (what torchrun launches): the birdcall command line."""

from . import main

main()
