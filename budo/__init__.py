"""budo: a ChatOps incident investigator. See README.md."""

__version__ = "0.1.0"
