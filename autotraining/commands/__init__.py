"""Subcommands of the ``autotraining`` console command (see ``autotraining.cli``)."""
