"""lambda-autotraining tooling: the ``autotraining`` command, the embedded run, deploy, the CLI's client.

What a developer or operator runs — the CLI and its subcommands (``commands/``), the embedded AWS
run (``local/``), the stack deploy with its bundle and wheelhouse builders (``deploy/``), the signed
HTTP client, the row-file reader, the cost estimate and the DLQ redrive. It imports the runtime
core (``autotraining``), never the other way round: the Lambda bundle takes the ``autotraining``
and ``handlers`` packages whole, and ``.importlinter`` keeps the direction.
"""
from __future__ import annotations
