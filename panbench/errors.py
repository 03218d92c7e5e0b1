"""Exception types shared across panbench; every user-facing failure derives from PanbenchError."""

from __future__ import annotations


class PanbenchError(Exception):
    """Base class of every error panbench raises on purpose.

    The CLI catches these, prints the message and exits non-zero without a traceback.
    """


class UnknownNameError(PanbenchError, KeyError):
    """A name (env, model, task, metric, action) was not found in its registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(PanbenchError, ValueError):
    """A configuration value (kwarg, YAML field, CLI option) is out of its valid range."""


class DataError(PanbenchError):
    """Data on disk (a shard, an index, a video) is missing, corrupt or of the wrong format."""


class ContractError(PanbenchError):
    """A component broke its interface contract (wrong shape, dtype, range, NaN, ...)."""


class ActionSpaceError(ConfigError):
    """A model cannot consume a task's actions (e.g. a continuous model on an env without an
    action space, or vectors of another dimension); ``panbench evaluate`` exits 2 on it."""
