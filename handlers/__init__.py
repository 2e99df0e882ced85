"""Lambda entry points: one module per function, each with a top-level ``handler(event, context)``.

Handlers are wiring only (parse the event, call the core, shape the response). They import the
core (``autotraining``) and numpy, never TensorFlow and never ``worker``. Importing the package
(every function's cold start) checks the configured schema first: a bad one stops the function
with one line naming the file and the feature, instead of answering 500 to every request.
"""
from autotraining.schema import check_configured_schema

check_configured_schema()
