"""Declarative task and suite specs (YAML), shipped inside the wheel as ``panbench.tasks``."""
