"""Tests of the PAN reference model (``reference_model/``)."""
