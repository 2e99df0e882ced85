"""Subcommands of the ``autotraining`` console command (see ``autotraining_tools.cli``)."""
