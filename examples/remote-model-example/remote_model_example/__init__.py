"""A foreign world model served to panbench: numpy, starlette, uvicorn and panbench.serve only."""

from remote_model_example.model import DriftModel

__all__ = ["DriftModel"]
