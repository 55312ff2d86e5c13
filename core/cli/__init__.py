"""Subcommand groups of ``python -m core``."""
