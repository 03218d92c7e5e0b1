"""PAN on open weights: a pretrained causal-LM backbone, a Wan video decoder and Causal Swin-DPM.

The paper's recipe (arXiv 2511.09057) built from public parts, as modules of ``reference_model``:

- ``reference_model.ow.tokenizers``: an offline tokenizer built in code (tests).
- ``reference_model.ow.backbone``: ``OWBackbone``, a local pretrained causal LM (Qwen2 / Qwen2.5
  family, optionally a VL model's vision tower as encoder h) with learnable queries and a projection.
- ``reference_model.ow.decoder``: ``OWDecoder``, diffusers' ``WanTransformer3DModel`` with a
  zero-initialised state stream and the Causal Swin-DPM rollout.
- ``reference_model.ow.config``, ``model``, ``cache``, ``train``: the composed ``PanOWModel``, the
  cached-feature format on disk and the two training stages.

Modules are imported by full path; this package itself holds only the recipe name.
``panbench train`` and ``pan-ref`` reach the recipe through :mod:`reference_model.recipes`.
"""

from __future__ import annotations

__all__ = ["RECIPE"]

RECIPE = "open-weights"
"""The ``recipe`` value of this recipe's training configs (see :mod:`reference_model.recipes`)."""
