"""Tests of astrobio.train.tasks: one module per task."""
