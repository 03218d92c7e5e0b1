"""Typed configuration of an open-weights PAN training run, read strictly from YAML.

A config file of this recipe has ``recipe: open-weights`` and three sections, ``model``
(:class:`OWModelConfig`: the backbone and decoder configs of :mod:`reference_model.ow.backbone`
and :mod:`reference_model.ow.decoder`, the frame resolution), ``train`` (:class:`OWTrainConfig`:
stage, optimisation, FSDP2, the feature cache) and ``data`` (:class:`OWDataConfig`: where episodes
come from and how they are cut into windows of chunks). Unknown keys and wrongly typed values are
errors naming the file and the key, through :func:`reference_model.config.from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError
from reference_model.config import from_dict
from reference_model.ow import RECIPE
from reference_model.ow.backbone import OWBackboneConfig
from reference_model.ow.decoder import OWDecoderConfig

__all__ = [
    "RECIPE",
    "OWConfig",
    "OWDataConfig",
    "OWModelConfig",
    "OWTrainConfig",
    "load_ow_config",
]

STAGES = (1, 2)
CACHE_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class OWModelConfig:
    """PanOWModel: backbone f (+ encoder h) and the Wan decoder g.

    Attributes:
        resolution: square frame side in pixels (frames are centre-cropped and resized to it; a
            multiple of the VAE's spatial factor times the transformer's patch size).
        backbone: :class:`reference_model.ow.backbone.OWBackboneConfig`.
        decoder: :class:`reference_model.ow.decoder.OWDecoderConfig`.
    """

    resolution: int = 64
    backbone: OWBackboneConfig = field(default_factory=OWBackboneConfig)
    decoder: OWDecoderConfig = field(default_factory=OWDecoderConfig)

    def validate(self, where: str = "model config") -> OWModelConfig:
        """Checks each part and that they fit together; returns self.

        Raises:
            ConfigError: naming ``where`` and the offending values.
        """
        if self.resolution < 1:
            raise ConfigError(f"{where}: expected resolution >= 1, but got {self.resolution}.")
        self.backbone.validate(f"{where}: backbone")
        validate = getattr(self.decoder, "validate", None)
        if callable(validate):
            validate(f"{where}: decoder")
        if self.backbone.state_dim != self.decoder.state_dim:
            raise ConfigError(
                f"{where}: backbone.state_dim {self.backbone.state_dim} must equal "
                f"decoder.state_dim {self.decoder.state_dim} (the state tokens f hands to g)."
            )
        return self


@dataclass
class OWTrainConfig:
    """One training stage.

    Attributes:
        stage: 1 (decoder only: the Wan transformer with its state stream idle; VAE, umT5 and
            the backbone frozen) or 2 (joint: the backbone's queries, projection and encoder h,
            plus LoRA or the whole LLM per ``model.backbone.tune``, and the decoder; the states
            f predicts over the window's history feed the decoder's state stream).
        seed: seeds model init, window draws and every noise draw (with the step and rank).
        steps: optimizer steps of this stage.
        batch_size: windows per step and process.
        lr: peak learning rate (AdamW, betas 0.9 / 0.999).
        warmup: linear warm-up steps, then cosine decay to ``min_lr_ratio * lr``.
        min_lr_ratio: the cosine floor as a fraction of ``lr``.
        weight_decay: AdamW weight decay (decoupled).
        grad_clip: max global gradient norm (0: no clipping).
        bf16: bfloat16 autocast for the forward passes (CUDA and CPU; master weights and optimizer
            state stay in the parameters' dtype).
        fsdp: shard with FSDP2 (``torch.distributed.fsdp.fully_shard``): one unit per transformer
            block of the LLM, the vision tower and the Wan transformer, plus the root. Needs a
            process group (``torchrun``; a single process gets a local one).
        activation_checkpointing: recompute each transformer block's activations in backward.
        init_from: a PanOWModel folder (``<stage-1 run>/model``) whose weights start this run;
            its model config must equal this one (stage 2 starts from stage 1 this way).
        cache_dir: the feature cache folder (default ``<out>/cache``); see
            :mod:`reference_model.ow.cache`. Several runs may share one.
        cache_dtype: storage dtype of cached latents and text embeddings.
        cache_shard_size: windows per cache shard.
        log_every / checkpoint_every: in steps.
        num_threads: CPU threads for torch (0: torch's default).
    """

    stage: int = 1
    seed: int = 0
    steps: int = 1000
    batch_size: int = 1
    lr: float = 1e-5
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    bf16: bool = True
    fsdp: bool = False
    activation_checkpointing: bool = False
    init_from: str | None = None
    cache_dir: str | None = None
    cache_dtype: str = "bfloat16"
    cache_shard_size: int = 64
    log_every: int = 10
    checkpoint_every: int = 500
    num_threads: int = 0


@dataclass
class OWDataConfig:
    """Episodes and how they become training windows (see :mod:`reference_model.ow.cache`).

    Attributes:
        source: ``env`` (``episodes`` episodes of ``length`` frames of a panbench env are
            generated once into ``<cache_dir>/episodes``, as ``panbench data generate`` does) or
            ``folder`` (a panbench episode folder at ``path``: ``panbench data generate`` or
            ``panbench data import-videos`` output, the user's own video-action data).
        env: env name (source ``env``).
        env_kwargs: env options (its resolution is the model's).
        episodes: episodes to generate (source ``env``).
        length: frames per generated episode (source ``env``).
        path: the episode folder (source ``folder``).
        frames_per_action: episode steps per chunk; a chunk's language action is its steps'
            texts (distinct ones joined by ``"; "``).
        chunks_per_window: chunks per training window (the decoder's Swin-DPM window holds two;
            the backbone sees the window's chunks as rounds, so at most ``backbone.history``).
        window_stride: chunks between window starts (0: ``chunks_per_window``).
    """

    source: str = "env"
    env: str = "shapes"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int = 64
    length: int = 9
    path: str | None = None
    frames_per_action: int = 1
    chunks_per_window: int = 2
    window_stride: int = 0

    @property
    def stride(self) -> int:
        """Chunks between window starts."""
        return self.window_stride or self.chunks_per_window


@dataclass
class OWConfig:
    """An open-weights training config file: ``recipe``, ``model``, ``train``, ``data``."""

    recipe: str = RECIPE
    model: OWModelConfig = field(default_factory=OWModelConfig)
    train: OWTrainConfig = field(default_factory=OWTrainConfig)
    data: OWDataConfig = field(default_factory=OWDataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, where: str = "config") -> OWConfig:
        """Checks every section; returns self.

        Raises:
            ConfigError: naming ``where``, the key, what was expected and what was received.
        """
        if self.recipe != RECIPE:
            raise ConfigError(f"{where}: expected recipe {RECIPE!r}, but got {self.recipe!r}.")
        self.model.validate(f"{where}: model")
        t, d = self.train, self.data
        if t.stage not in STAGES:
            raise ConfigError(f"{where}: expected train.stage 1 or 2, but got {t.stage}.")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "cache_shard_size"):
            if getattr(t, name) < 1:
                raise ConfigError(
                    f"{where}: expected train.{name} >= 1, but got {getattr(t, name)}."
                )
        if t.lr <= 0 or t.warmup < 0 or not 0 <= t.min_lr_ratio <= 1 or t.grad_clip < 0:
            raise ConfigError(
                f"{where}: expected train.lr > 0, warmup >= 0, 0 <= min_lr_ratio <= 1 and "
                f"grad_clip >= 0, but got {t.lr}, {t.warmup}, {t.min_lr_ratio}, {t.grad_clip}."
            )
        if t.cache_dtype not in CACHE_DTYPES:
            raise ConfigError(
                f"{where}: expected train.cache_dtype in {CACHE_DTYPES}, but got {t.cache_dtype!r}."
            )
        if d.source not in ("env", "folder"):
            raise ConfigError(
                f"{where}: expected data.source 'env' or 'folder', but got {d.source!r}."
            )
        if d.source == "folder" and not d.path:
            raise ConfigError(f"{where}: data.source is 'folder' but data.path is not set.")
        for name in ("frames_per_action", "chunks_per_window", "episodes", "length"):
            if getattr(d, name) < 1:
                raise ConfigError(
                    f"{where}: expected data.{name} >= 1, but got {getattr(d, name)}."
                )
        if d.window_stride < 0:
            raise ConfigError(
                f"{where}: expected data.window_stride >= 0, but got {d.window_stride}."
            )
        if d.chunks_per_window > self.model.backbone.history:
            raise ConfigError(
                f"{where}: data.chunks_per_window {d.chunks_per_window} exceeds "
                f"model.backbone.history {self.model.backbone.history}: a window's chunks are the "
                "backbone's rounds."
            )
        return self


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise ConfigError(f"Training config {path} not found.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: expected a UTF-8 YAML training config, but {err}.") from err


def load_ow_config(path: str | Path) -> OWConfig:
    """Reads an open-weights training config YAML, strictly, and validates it.

    Raises:
        ConfigError: the file is missing, not YAML, or has unknown keys or bad values.
    """
    p = Path(path)
    return from_dict(OWConfig, _read_yaml(p), str(p)).validate(str(p))
