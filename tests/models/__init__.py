"""Tests of the built-in models and the adapter contract."""
