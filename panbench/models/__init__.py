"""World-model adapters: the contract (api.py), the registry, built-in baselines, one file per adapter."""

from panbench.models.api import ActionSpace, Context, ContractError, ModelSpec, WorldModel
from panbench.models.registry import MODELS, load_model, register_model, resolve_model_class

__all__ = [
    "MODELS",
    "ActionSpace",
    "Context",
    "ContractError",
    "ModelSpec",
    "WorldModel",
    "load_model",
    "register_model",
    "resolve_model_class",
]
