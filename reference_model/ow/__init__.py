"""PAN on open weights: a pretrained causal-LM backbone, a Wan video decoder and Causal Swin-DPM.

The paper's recipe (arXiv 2511.09057) built from public parts, as modules of ``reference_model``:

- ``reference_model.ow.tokenizers``: an offline tokenizer built in code (tests).
- ``reference_model.ow.backbone``: ``OWBackbone``, a local pretrained causal LM (Qwen2 / Qwen2.5
  family, optionally a VL model's vision tower as encoder h) with learnable queries and a projection.
- ``reference_model.ow.decoder``: ``OWDecoder``, diffusers' ``WanTransformer3DModel`` with a
  zero-initialised state stream and the Causal Swin-DPM rollout.
- ``reference_model.ow.config``, ``model``, ``cache``, ``train``: the composed ``PanOWModel``, the
  cached-feature format on disk and the two training stages.

Modules are imported by full path; this package itself holds only the recipe marker.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RECIPE", "is_open_weights_config"]

RECIPE = "open-weights"
"""The ``recipe`` value that marks a training config of this recipe (``panbench train``)."""


def is_open_weights_config(path: str | Path) -> bool:
    """Whether the YAML file at ``path`` declares ``recipe: open-weights`` (False if unreadable).

    ``panbench train`` asks this before reading a config strictly, to pick the training loop.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get("recipe") == RECIPE
