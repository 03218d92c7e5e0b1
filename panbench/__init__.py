"""panbench: an evaluation suite for world models, scored against ground-truth environments."""

from panbench._version import __version__

__all__ = ["__version__"]
