"""Typed configuration of the PAN reference model and its training run, read strictly from YAML/JSON.

A training config file has three sections, ``model``, ``train`` and ``data``; a checkpoint's
``config.json`` stores the ``model`` section. Every key is checked: an unknown key is an error
naming the file, the section and the closest known key, so a typo never trains the wrong model.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from panbench.errors import ConfigError
from panbench.registry import did_you_mean

__all__ = [
    "BackboneConfig",
    "DataConfig",
    "DecoderConfig",
    "EncoderConfig",
    "ModelConfig",
    "RunConfig",
    "StreamConfig",
    "TrainConfig",
    "load_run_config",
]

OBJECTIVES = ("generative", "latent")
PREDICTION_TYPES = ("sample", "epsilon", "v_prediction")


@dataclass
class EncoderConfig:
    """Encoder h: a diffusers ``AutoencoderKL`` (downsamples by 2 per block after the first).

    Attributes:
        block_out_channels: channels per resolution level; ``len - 1`` halvings.
        layers_per_block: resnet layers per level.
        latent_channels: channels C of the latent [C, h, w].
        norm_num_groups: group-norm groups (must divide every channel count).
        mid_attention: self-attention in the autoencoder's middle block.
        kl_weight: weight of the KL term in first-stage training.
    """

    block_out_channels: list[int] = field(default_factory=lambda: [32, 64])
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_num_groups: int = 16
    mid_attention: bool = False
    kl_weight: float = 1e-6


@dataclass
class BackboneConfig:
    """Backbone f: a causal ``transformers`` Qwen2 model built from config (no download).

    Attributes:
        hidden_size: width of the transformer.
        num_layers: decoder layers.
        num_heads: attention heads (``num_kv_heads`` for grouped-query attention).
        num_kv_heads: key/value heads.
        intermediate_size: MLP width.
        state_patch: latent patch side; the state is (h/p)*(w/p) tokens, and so are the queries.
        max_action_bytes: UTF-8 bytes of an action's text kept (longer texts are truncated).
        rope_theta: rotary embedding base.
    """

    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 256
    state_patch: int = 4
    max_action_bytes: int = 32
    rope_theta: float = 10000.0


@dataclass
class DecoderConfig:
    """Decoder g: a diffusers ``UNet2DConditionModel`` over latents.

    Attributes:
        block_out_channels: UNet channels per level.
        attention_levels: per level, whether it has (self- and cross-) attention blocks; the
            middle block always has. Default: every level.
        layers_per_block: resnet layers per level.
        cross_attention_dim: width of the (zero-initialised) projection of the state tokens.
        attention_head_dim: channels per cross/self-attention head.
        num_train_timesteps: DDPM training timesteps.
        beta_schedule: diffusers beta schedule name.
        prediction_type: what the UNet predicts: ``sample`` (x0), ``epsilon`` or ``v_prediction``.
        noise_aug: std of the Gaussian noise added to the previous frame's latent (PAN: 0.055).
        cond_dropout: probability of dropping the state tokens in training (for guidance).
        sample_steps: default DDIM steps at inference.
        guidance: default classifier-free guidance scale (1.0: none).
    """

    block_out_channels: list[int] = field(default_factory=lambda: [48, 96])
    attention_levels: list[bool] | None = None
    layers_per_block: int = 1
    cross_attention_dim: int = 64
    attention_head_dim: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"
    noise_aug: float = 0.055
    cond_dropout: float = 0.1
    sample_steps: int = 10
    guidance: float = 1.0


@dataclass
class ModelConfig:
    """The whole PAN reference model.

    Attributes:
        resolution: square frame side in pixels.
        history: R, the rounds of (state, action) the backbone sees (PAN uses 10).
        objective: ``generative`` (diffusion loss through g reaches f) or ``latent`` (JEPA-style
            L2 from f's query outputs to h(o'); g trains on detached states).
        latent_weight: weight of the latent L2 added to the generative objective (0: none).
        change_weight: extra loss weight on the latent cells that change between frames: a cell
            whose next latent differs from the current one by more than ``change_threshold``
            (max over channels, in normalised latent units) weighs ``1 + change_weight`` in the
            diffusion loss and the latent L2 (weights normalised to mean 1 per batch). The moved
            sprite is about 5% of a shapes frame, so without it the loss is dominated by the
            static scene and f barely learns to move the commanded object. 0: uniform (PAN).
        change_threshold: what counts as a change for ``change_weight``.
        object_weight: extra loss weight on the latent cells under object pixels of the next
            frame (:func:`reference_model.encoder.object_mask`, max-pooled to the latent
            grid), added to the change weight: a cell weighs ``1 + change_weight * changed +
            object_weight * object`` in the diffusion loss and the latent L2 (normalised to
            mean 1 per batch). A table's cube or a maze's agent covers a few of 256 cells, so
            a g that dims or drops it costs little under the change weight alone, unless it
            moved. 0: off (bit-identical to before).
        reward_head: a small head on f's state tokens predicts each step's reward (clipped to
            [-1, 1]) and terminal flag, trained where the data has them (Atari); the pan-ref
            adapter then declares ``predicts_rewards``.
        reward_weight: weight of the reward and terminal losses.
        action_dim: length of the continuous action vectors the model was trained on (0: none);
            such vectors reach f as fixed numeric text (``reference_model.tokenizer.action_text``).
        encoder / backbone / decoder: the three parts.
    """

    resolution: int = 32
    history: int = 2
    objective: str = "generative"
    latent_weight: float = 0.0
    change_weight: float = 0.0
    change_threshold: float = 0.25
    object_weight: float = 0.0
    reward_head: bool = False
    reward_weight: float = 1.0
    action_dim: int = 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    @property
    def latent_resolution(self) -> int:
        """Side h = w of the latent grid."""
        return self.resolution // 2 ** (len(self.encoder.block_out_channels) - 1)

    @property
    def num_state_tokens(self) -> int:
        """Tokens per state (and learnable queries per round)."""
        return (self.latent_resolution // self.backbone.state_patch) ** 2

    def validate(self, where: str = "model config") -> ModelConfig:
        """Checks cross-field consistency; returns self.

        Raises:
            ConfigError: naming ``where`` and the offending values.
        """
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"{where}: expected objective in {OBJECTIVES}, but got {self.objective!r}."
            )
        if self.decoder.prediction_type not in PREDICTION_TYPES:
            raise ConfigError(
                f"{where}: expected decoder.prediction_type in {PREDICTION_TYPES}, but got "
                f"{self.decoder.prediction_type!r}."
            )
        if self.change_weight < 0 or self.change_threshold < 0:
            raise ConfigError(
                f"{where}: expected change_weight >= 0 and change_threshold >= 0, but got "
                f"{self.change_weight} and {self.change_threshold}."
            )
        if not (math.isfinite(self.object_weight) and self.object_weight >= 0):
            raise ConfigError(
                f"{where}: expected object_weight >= 0, but got {self.object_weight!r}."
            )
        if self.action_dim < 0 or self.reward_weight < 0:
            raise ConfigError(
                f"{where}: expected action_dim >= 0 and reward_weight >= 0, but got "
                f"{self.action_dim} and {self.reward_weight}."
            )
        if self.history < 1:
            raise ConfigError(f"{where}: expected history >= 1, but got {self.history}.")
        scale = 2 ** (len(self.encoder.block_out_channels) - 1)
        if self.resolution % scale:
            raise ConfigError(
                f"{where}: resolution {self.resolution} is not divisible by the encoder's "
                f"downsampling factor {scale}."
            )
        if self.latent_resolution % self.backbone.state_patch:
            raise ConfigError(
                f"{where}: latent side {self.latent_resolution} is not divisible by "
                f"backbone.state_patch {self.backbone.state_patch}."
            )
        levels = self.decoder.attention_levels
        if levels is not None and len(levels) != len(self.decoder.block_out_channels):
            raise ConfigError(
                f"{where}: decoder.attention_levels has {len(levels)} entries but "
                f"block_out_channels has {len(self.decoder.block_out_channels)}."
            )
        if self.backbone.hidden_size % self.backbone.num_heads:
            raise ConfigError(
                f"{where}: backbone.hidden_size {self.backbone.hidden_size} is not divisible by "
                f"num_heads {self.backbone.num_heads}."
            )
        for name, chans, groups in (
            ("encoder", self.encoder.block_out_channels, self.encoder.norm_num_groups),
            ("decoder", self.decoder.block_out_channels, 8),
        ):
            bad = [c for c in chans if c % groups]
            if bad:
                raise ConfigError(
                    f"{where}: {name}.block_out_channels {chans} must be multiples of {groups} "
                    "(group norm)."
                )
        return self


@dataclass
class TrainConfig:
    """Optimisation: first stage trains h alone, second trains f and g with h frozen (unless
    ``joint_encoder``).

    Attributes:
        seed: seeds the model init, the data stream and every noise draw.
        batch_size: windows per step (per process under DDP).
        ae_steps / ae_lr: first-stage (autoencoder) steps and peak learning rate.
        steps / lr: second-stage (backbone + decoder) steps and peak learning rate.
        warmup: linear warm-up steps of each stage, then cosine decay to ``min_lr_ratio * lr``.
        weight_decay: AdamW weight decay.
        grad_clip: max global gradient norm.
        ema_decay: decay of the exponential moving average of the weights (exported model).
        log_every / sample_every / checkpoint_every: in steps.
        compile: wrap the stage's trainable modules in ``torch.compile``.
        init_from: a checkpoint folder of the same architecture whose weights (h, f, g, and
            the reward head where it has one) start the run: a warm start. Stage 1 (if any)
            then fine-tunes h from them.
        init_encoder: a checkpoint folder whose trained encoder h (weights and latent
            statistics) replaces stage 1; requires ``ae_steps: 0``. Lets several f/g runs share
            one first-stage model, as PAN pretrains h once. With ``init_from`` as well, h comes
            from here and f and g from ``init_from``.
        num_threads: CPU threads for torch (0: torch's default). One thread is several times
            faster than two on a machine whose cores are shared with other jobs.
        joint_encoder: (ablation) h keeps training in stage 2, with no stop-gradient or EMA
            target: the setting in which a latent-only objective can collapse. Under the
            generative objective h learns from every loss it appears in plus its reconstruction
            loss on the window's frames (what g generates must decode to the observed pixels);
            under the latent objective only through the L2 from f's prediction to h(o') (g
            learns to render from detached latents).
        unroll: frames per window that the model learns from its own predictions, against
            the drift of long rollouts (exposure bias): windows grow to ``history + 1 +
            unroll`` frames, and after the usual teacher-forced loss the model samples the
            next frame from its history (``unroll_steps`` DDIM steps, no gradient), decodes
            and re-encodes it as a rollout does, and learns the following true frame from that
            history. Each unrolled frame costs about one more step's sampling and backbone.
        unroll_steps: DDIM steps of those samples (fewer than the rollouts' ``sample_steps``
            keeps them cheap).
        unroll_history: ``sampled`` (f's history holds the model's samples, as in a rollout) or
            ``true`` (f keeps the true history and only g's previous frame is the sample: g
            learns to render what f's state says from an imperfect previous frame).
        ae_decoder_only: stage 1 trains only h's decoder half (the latents-to-pixels side),
            from the encoder of ``init_from`` or ``init_encoder``; the encoder and its latent
            statistics stay as they are, so the latents f and g were trained on do not change
            and a trained model's rendering can be improved without retraining f and g.
        ae_object_weight: stage 1's extra reconstruction weight on object pixels (those away
            from the frame's background colour; see ``Encoder.reconstruction_loss``); 0 is the
            plain mean.
    """

    seed: int = 0
    batch_size: int = 32
    ae_steps: int = 1000
    ae_lr: float = 2e-3
    steps: int = 3000
    lr: float = 1e-3
    warmup: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 250
    compile: bool = False
    init_from: str | None = None
    init_encoder: str | None = None
    num_threads: int = 0
    joint_encoder: bool = False
    unroll: int = 0
    unroll_steps: int = 3
    unroll_history: str = "sampled"
    ae_decoder_only: bool = False
    ae_object_weight: float = 0.0


@dataclass
class StreamConfig:
    """One env stream of a multi-domain ``data.streams`` list.

    Attributes:
        env: env name (``panbench ls envs``).
        env_kwargs: keyword arguments of the env.
        resolution: side the env renders at (0: the model's); frames are then resized
            (``squash``, as the harness resizes a task's frames) to the model's resolution.
            Envs with a minimum side (table3d: 64) need it; use the tasks' resolution.
        policy: action policy (``agent``, ``intervention``, ``random``, ``mixed``,
            ``continuous``).
        weight: relative share of the training windows drawn from this stream.
        wait_prob: probability that a step takes the env's ``wait`` action (where it has one),
            so the model sees that nothing moves when nothing is commanded.
    """

    env: str = "shapes"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    resolution: int = 0
    policy: str = "agent"
    weight: float = 1.0
    wait_prob: float = 0.0


@dataclass
class DataConfig:
    """Where training windows come from.

    Attributes:
        source: ``env`` (stream rollouts of a panbench env) or ``folder`` (a ``panbench data
            generate`` output at ``path``).
        env: env name (source ``env``).
        env_kwargs: keyword arguments of the env (resolution is the model's).
        policy: action policy of the streamed rollouts (see ``panbench.protocols.base``).
        path: episode folder (source ``folder``).
        effective_only: (source ``env``) redraw an action that leaves the frame unchanged (a
            move blocked by a wall or another object), up to 8 times, so nearly every training
            transition shows an effect to learn from.
        streams: (source ``env``) several env streams with weights, each window drawn from one
            of them (see :class:`StreamConfig`); replaces ``env``/``env_kwargs``/``policy``.
    """

    source: str = "env"
    env: str = "shapes"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policy: str = "agent"
    path: str | None = None
    effective_only: bool = False
    streams: list[dict[str, Any]] = field(default_factory=list)

    def stream_configs(self, where: str = "data") -> list[StreamConfig]:
        """The env streams: ``streams`` checked strictly, or the single ``env`` stream.

        Raises:
            ConfigError: an unknown key or bad value in a stream (named by its index).
        """
        if not self.streams:
            return [StreamConfig(self.env, dict(self.env_kwargs), 0, self.policy)]
        out = []
        for i, item in enumerate(self.streams):
            stream = from_dict(StreamConfig, item, where, f"data.streams[{i}]")
            if not (stream.weight > 0 and 0 <= stream.wait_prob <= 1 and stream.resolution >= 0):
                raise ConfigError(
                    f"{where}: expected data.streams[{i}] to have weight > 0, wait_prob in "
                    f"[0, 1] and resolution >= 0, but got weight {stream.weight}, wait_prob "
                    f"{stream.wait_prob}, resolution {stream.resolution}."
                )
            out.append(stream)
        return out


@dataclass
class RunConfig:
    """A training config file: ``model``, ``train`` and ``data`` sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


T = TypeVar("T")


def from_dict(cls: type[T], data: Any, where: str, section: str = "") -> T:
    """Builds dataclass ``cls`` from ``data``, refusing unknown keys and wrong kinds.

    Args:
        cls: a dataclass type (nested dataclass fields are built recursively).
        data: a mapping from the file.
        where: the file (or description) named in errors.
        section: dotted path of ``data`` inside the file, for errors.

    Raises:
        ConfigError: an unknown key (with the closest known one), or a value of the wrong type.
    """
    label = section or "top level"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping at {label}, but got {type(data).__name__} {data!r}."
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)  # the annotations are strings (postponed evaluation)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key {key!r} in {label}.{did_you_mean(str(key), list(fields))} "
                f"Known keys: {', '.join(fields)}."
            )
        default = fields[key].default_factory
        sub = section + "." + key if section else key
        example = default() if default is not dataclasses.MISSING else fields[key].default
        if dataclasses.is_dataclass(example):
            kwargs[key] = from_dict(type(example), value, where, sub)
            continue
        kwargs[key] = _check_kind(value, hints[key], example, where, sub)
    return cls(**kwargs)


def _check_kind(value: Any, tp: Any, example: Any, where: str, key: str) -> Any:
    """Checks ``value`` against the field's resolved type ``tp``; returns it (ints become floats).

    Understands what the configs use: ``bool``, ``int``, ``float`` (an int is accepted), ``str``,
    ``list[X]`` (every element checked), ``dict[...]``, ``Any``, ``Literal[...]`` and unions
    with ``None`` (``X | None``).
    """
    ok, value = _matches(value, tp)
    if not ok:
        raise ConfigError(
            f"{where}: expected {key} to be like {example!r} ({_type_name(tp)}), but got "
            f"{type(value).__name__} {value!r}."
        )
    return value


def _matches(value: Any, tp: Any) -> tuple[bool, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None
        for arg in args:
            if arg is not type(None):
                ok, converted = _matches(value, arg)
                if ok:
                    return True, converted
        return False, value
    if origin is typing.Literal:
        return value in args, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    if tp is list or origin is list:
        if not isinstance(value, list):
            return False, value
        if not args:
            return True, value
        checked = [_matches(v, args[0]) for v in value]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    if tp is dict or origin is dict:
        return isinstance(value, dict), value
    return isinstance(value, tp) if isinstance(tp, type) else False, value


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not typing.get_args(tp) else str(tp)


def load_run_config(path: str | Path) -> RunConfig:
    """Reads a training config YAML (``model``/``train``/``data`` sections), strictly.

    Raises:
        ConfigError: the file is missing, not YAML, or has unknown keys or bad values.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"Training config {p} not found. Shipped configs: "
            f"{', '.join(sorted(c.name for c in CONFIG_DIR.glob('*.yaml')))} in {CONFIG_DIR}."
        )
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{p}: not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p}: expected a UTF-8 YAML training config, but {err}.") from err
    run = from_dict(RunConfig, data, str(p))
    run.model.validate(str(p))
    _check_train_ranges(run.train, p)
    if run.data.source not in ("env", "folder"):
        raise ConfigError(
            f"{p}: expected data.source 'env' or 'folder', but got {run.data.source!r}."
        )
    if run.train.init_encoder and run.train.ae_steps and not run.train.ae_decoder_only:
        raise ConfigError(
            f"{p}: train.init_encoder loads a trained encoder, so train.ae_steps must be 0 "
            f"(or train.ae_decoder_only true), but it is {run.train.ae_steps}."
        )
    if run.train.ae_decoder_only and not (run.train.init_from or run.train.init_encoder):
        raise ConfigError(
            f"{p}: train.ae_decoder_only trains h's decoder on the latents of a trained "
            "encoder, so it needs train.init_from or train.init_encoder, but neither is set."
        )
    if run.train.ae_decoder_only and not run.train.ae_steps:
        raise ConfigError(
            f"{p}: train.ae_decoder_only is a first-stage setting, but train.ae_steps is 0."
        )
    if run.train.unroll_history not in ("sampled", "true"):
        raise ConfigError(
            f"{p}: expected train.unroll_history 'sampled' or 'true', but got "
            f"{run.train.unroll_history!r}."
        )
    run.data.stream_configs(str(p))
    if run.data.source == "folder" and not run.data.path:
        raise ConfigError(f"{p}: data.source is 'folder' but data.path is not set.")
    return run


#: inclusive bounds (None: unbounded) of the numeric train.* settings
_TRAIN_RANGES: dict[str, tuple[float | None, float | None]] = {
    "seed": (0, None),
    "batch_size": (1, None),
    "ae_steps": (0, None),
    "steps": (0, None),
    "warmup": (0, None),
    "min_lr_ratio": (0, 1),
    "weight_decay": (0, None),
    "grad_clip": (0, None),
    "ema_decay": (0, 1),
    "log_every": (1, None),
    "sample_every": (1, None),
    "checkpoint_every": (1, None),
    "num_threads": (0, None),
    "unroll": (0, None),
    "unroll_steps": (1, None),
    "ae_object_weight": (0, None),
}


def _check_train_ranges(train: Any, where: Path) -> None:
    """Refuses train.* settings out of range (a batch of 0, negative steps, a zero lr, ...)."""
    for name in ("lr", "ae_lr"):
        value = getattr(train, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{where}: expected train.{name} > 0, but got {value!r}.")
    for name, (low, high) in _TRAIN_RANGES.items():
        value = getattr(train, name, None)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # types are checked when the config is read
        if (low is not None and value < low) or (high is not None and value > high):
            want = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise ConfigError(f"{where}: expected train.{name} {want}, but got {value!r}.")


CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The shipped training configs (tiny, small, base)."""
