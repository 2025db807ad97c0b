"""Tests of astrobio.train (one module per package module)."""
