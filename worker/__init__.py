"""The instance side: queue drain loop, round planning, incremental trainer, drift detector, replay sample, publisher, self-stop.

Runs on the persistent EC2 instance under systemd (and in the embedded run's instance agent).
This is the only package that imports TensorFlow; ``TF_USE_LEGACY_KERAS=1`` must be set before
that import so exported models load in TensorFlow.js 4.22. The systemd unit and the instance
agent set it; importing this package sets it too (when unset), because a process that imports
TensorFlow first with Keras 3 cannot switch back.
"""
import os as _os

# Not a setting: a switch TensorFlow reads once at import time (see shared NOTES.md).
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# tensorflowjs imports tensorflow_decision_forests, whose welcome banner imports IPython (not
# installed) whenever stdout is not a terminal file (pytest, pipes): switch the banner off.
_os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
