"""Lambda entry points: one module per function, each with a top-level ``handler(event, context)``.

Handlers are wiring only (parse the event, call the core, shape the response). They import the
core (``autotraining``) and numpy, never TensorFlow and never ``worker``.
"""
