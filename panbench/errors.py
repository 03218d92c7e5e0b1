"""Exception types shared across panbench; every user-facing failure derives from PanbenchError."""

from __future__ import annotations


class PanbenchError(Exception):
    """Base class of every error panbench raises on purpose.

    The CLI catches these, prints the message and exits with :attr:`exit_code` without a
    traceback.
    """

    #: the CLI's exit status for this kind of error (2: input refused; docs/errors.md)
    exit_code: int = 2


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


class RemoteError(PanbenchError):
    """A served model (``--model remote``, ``panbench serve``) cannot be used: the server is
    unreachable, timed out, died, replied malformed or with another wire version, or refuses to
    start. The message names the server and what went wrong; the CLI exits 2."""

    exit_code = 2


class ActionSpaceError(ConfigError):
    """A model cannot consume a task's actions (e.g. a continuous model on an env without an
    action space, or vectors of another dimension); ``panbench evaluate`` exits 2 on it."""
