"""The model registry: ``@register_model("name")``, lazy ``"module:Class"`` strings, plugins.

Third-party packages add models through the entry-point group ``panbench.models``::

    [project.entry-points."panbench.models"]
    my-model = "my_package.adapter:MyWorldModel"
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from panbench.errors import ConfigError, ContractError, PanbenchError
from panbench.models.api import ModelSpec, WorldModel
from panbench.registry import Registry, did_you_mean, import_string

MODELS: Registry[type[WorldModel]] = Registry("model", entry_point_group="panbench.models")
MODELS.register("oracle", "panbench.models.baselines:OracleModel")
MODELS.register("copy-last", "panbench.models.baselines:CopyLastModel")
MODELS.register("random-action", "panbench.models.baselines:RandomActionModel")
MODELS.register("pan-ref", "panbench.models.pan_ref:PanRefModel")
MODELS.register("diffusers-i2v", "panbench.models.diffusers_i2v:DiffusersI2VModel")
MODELS.register("remote", "panbench.models.remote:RemoteModel")

M = TypeVar("M", bound=type[WorldModel])


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator registering a :class:`WorldModel` subclass under ``name``."""

    def decorate(cls: M) -> M:
        MODELS.register(name, cls)
        return cls

    return decorate


def resolve_model_class(name: str) -> type[WorldModel]:
    """A registered name, or a ``"module:Class"`` import path, to the adapter class."""
    if ":" in name:
        try:
            cls = import_string(name)
        except ImportError as err:
            raise ConfigError(
                f"Cannot import model {name!r}: {err}. Expected 'module:Class' naming a "
                "WorldModel subclass in an importable module (is it on PYTHONPATH?)."
            ) from err
    else:
        cls = MODELS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, WorldModel)):
        raise ContractError(
            f"Expected {name!r} to name a panbench.models.api.WorldModel subclass, "
            f"but it is {cls!r}."
        )
    return cls


def load_model(name: str, model_args: Mapping[str, Any] | None = None) -> WorldModel:
    """Builds the model ``name`` with ``model_args`` (from ``--model-args k=v,...``).

    Raises:
        UnknownNameError: ``name`` is not registered (the message suggests close names).
        ConfigError: an argument is not accepted by the adapter.
    """
    cls = resolve_model_class(name)
    args = dict(model_args or {})
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed = [p for p in params if p != "self"]
        for key in args:
            if key not in allowed:
                raise ConfigError(
                    f"Unknown model argument {key!r} for model {name!r}."
                    f"{did_you_mean(key, allowed)} Accepted: {', '.join(allowed) or '(none)'}."
                )
    missing = [
        p.name
        for p in list(params.values())[1:]
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in args
    ]
    if missing:
        raise ConfigError(
            f"Model {name!r} requires the argument(s) {', '.join(missing)}; "
            f"pass them with --model-args {missing[0]}=..."
        )
    model = _construct(cls, name, args)
    if not isinstance(getattr(model, "spec", None), ModelSpec):
        raise ContractError(
            f"Model {name!r} must set `spec` to a panbench.models.api.ModelSpec in __init__, "
            f"but it is {getattr(model, 'spec', None)!r}."
        )
    return model


def _construct(cls: type, name: str, args: dict[str, Any]) -> Any:
    """``cls(**args)``, with an adapter's own exceptions refused naming the model.

    Raises:
        ConfigError: the constructor refused a value (ValueError, TypeError): a bad --model-args.
        ContractError: the constructor failed otherwise.
    """
    try:
        return cls(**args)
    except PanbenchError:
        raise
    except (TypeError, ValueError) as err:
        shown = ",".join(f"{k}={v!r}" for k, v in args.items()) or "(none)"
        raise ConfigError(
            f"Model {name!r} refused its arguments {shown}: {type(err).__name__}: {err}. "
            "Expected values of the types its constructor takes; --debug shows where."
        ) from err
    except Exception as err:
        raise ContractError(
            f"Model {name!r} broke the WorldModel contract: expected its constructor to "
            f"return, but it raised {type(err).__name__}: {err}; --debug shows where."
        ) from err
