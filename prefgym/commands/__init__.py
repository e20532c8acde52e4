"""Subcommands of the ``prefgym`` CLI, one module each."""
