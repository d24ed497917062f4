"""birdcall: recognise bird species by sound in long field recordings."""

__version__ = "0.1.0"
