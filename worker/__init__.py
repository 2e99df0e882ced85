"""The instance side: queue drain loop, incremental trainer, reservoir, publisher, self-stop.

Runs on the persistent EC2 instance under systemd (and in the embedded run's instance agent).
This is the only package that imports TensorFlow; set ``TF_USE_LEGACY_KERAS=1`` before that
import so exported models load in TensorFlow.js 4.22.
"""
