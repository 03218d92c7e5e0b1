"""Tests of the open-weights PAN recipe (``reference_model/ow/``)."""
