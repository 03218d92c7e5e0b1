"""The installed panbench version, read from package metadata (falls back for source trees)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("panbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
