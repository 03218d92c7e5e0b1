"""The ``diffusers-i2v`` adapter: open image-to-video diffusion pipelines as panbench world models.

One adapter drives six diffusers pipelines, chosen with ``pipeline=``:

- ``wan``: ``WanImageToVideoPipeline`` (Wan 2.1 / 2.2), one conditioning frame, 4n+1 frames.
- ``cogvideox``: ``CogVideoXImageToVideoPipeline``, one conditioning frame, 8n+1 frames.
- ``ltx``: ``LTXImageToVideoPipeline``, one conditioning frame, 8n+1 frames.
- ``ltx-condition``: ``LTXConditionPipeline``, 8k+1 conditioning frames, 8n+1 frames.
- ``cosmos``: ``Cosmos2VideoToWorldPipeline`` (Cosmos-Predict2), 4k+1 conditioning frames,
  4n+1 frames; runs only with its safety checker.
- ``svd``: ``StableVideoDiffusionPipeline``, one conditioning frame, any frame count, no prompt.

The frame rules are those of the real checkpoints' VAEs; the adapter reads them from the loaded
pipeline, so tiny test pipelines follow their own.

Each :meth:`DiffusersI2VModel.step` is one pipeline call per rollout: the last frame (or, for
``ltx-condition`` and ``cosmos``, the last ``c`` frames) conditions a clip of
``num_frames = c + frames_per_step`` frames; the first ``c`` frames of the clip reproduce the
conditioning and are dropped, the other ``frames_per_step`` are returned. An action is rendered
as text through ``prompt_template`` (``"{action}"`` by default; ``"{scene}. {action}"`` with
``scene=...`` adds a scene description). ``svd`` takes no prompt: it is an action-free baseline.

Noise is seeded per rollout and per chunk: a CPU ``torch.Generator`` seeded from
``(seed, context.seeds[b], chunk index)``, and every rollout is its own pipeline call, so a
rollout does not depend on the batch it ran in (or on the device's random number generator).
Branches made with :meth:`~DiffusersI2VModel.clone` share their next chunk's noise, so two
branches differ only through their actions.

Cosmos-Predict2 is licensed (NVIDIA Open Model License) on the condition that its safety checker
runs: this adapter never runs ``cosmos`` without one. By default it builds the real
``cosmos_guardrail.CosmosSafetyChecker`` and refuses to load when that package is missing; an
explicit checker (an object, or a ``"module:Name"`` path) may be passed as ``safety_checker=``,
which tests use, and its class is recorded in the results.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from panbench.data.frames import resize_frames
from panbench.envs.base import Action
from panbench.errors import ConfigError, ContractError
from panbench.models.api import ActionSpace, Context, ModelSpec, WorldModel
from panbench.registry import did_you_mean

__all__ = ["FAMILIES", "DiffusersI2VModel", "Family", "FixedSize", "chunk_seed"]

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"}
_DTYPES.update({"float16": "float16", "fp16": "float16"})
_OFFLOAD = ("none", "model", "sequential")
# __call__ arguments the adapter sets itself; a user passing one would break the frame contract.
_RESERVED = frozenset(
    {
        "image",
        "video",
        "conditions",
        "frame_index",
        "last_image",
        "prompt",
        "prompt_embeds",
        "height",
        "width",
        "num_frames",
        "generator",
        "latents",
        "output_type",
        "return_dict",
        "num_videos_per_prompt",
    }
)


class FixedSize(NamedTuple):
    """The only generation size a checkpoint runs at, and why."""

    height: int
    width: int
    why: str


def _one(pipe: Any) -> int:
    return 1


def _vae_temporal(pipe: Any) -> int:
    return int(pipe.vae_scale_factor_temporal)


def _ltx_temporal(pipe: Any) -> int:
    return int(pipe.vae_temporal_compression_ratio)


def _cogvideox_temporal(pipe: Any) -> int:
    # The CogVideoX VAE decodes an even number of latent frames to 4 frames each (no leading
    # single frame), so only an odd latent count, i.e. 8n+1 frames, round-trips.
    return 2 * int(pipe.vae_scale_factor_temporal)


def _svd_spatial(pipe: Any) -> int:
    return int(pipe.vae_scale_factor)


def _ltx_spatial(pipe: Any) -> int:
    patch = int(pipe.vae_spatial_compression_ratio) * int(pipe.transformer_spatial_patch_size)
    return math.lcm(32, patch)  # LTX's check_inputs wants multiples of 32


def _transformer_spatial(check_multiple: int) -> Callable[[Any], int]:
    """The latent patch in pixels, lcm'd with the multiple the pipeline's ``check_inputs`` wants."""

    def multiple(pipe: Any) -> int:
        denoiser = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        size = denoiser.config.patch_size  # Wan 2.2 A14B may keep only transformer_2
        side = size if isinstance(size, int) else size[-1]
        return math.lcm(check_multiple, int(pipe.vae_scale_factor_spatial) * int(side))

    return multiple


_patch_spatial = _transformer_spatial(1)  # wan: only the latent patch


def _any_size(pipe: Any) -> FixedSize | None:
    return None


def _cogvideox_size(pipe: Any) -> FixedSize | None:
    cfg = pipe.transformer.config
    if not cfg.use_learned_positional_embeddings:
        return None
    scale = int(pipe.vae_scale_factor_spatial)
    return FixedSize(
        int(cfg.sample_height) * scale,
        int(cfg.sample_width) * scale,
        "uses learned positional embeddings",
    )


def _transformer_clip(pipe: Any) -> int:
    return int(pipe.transformer.config.sample_frames)


def _unet_clip(pipe: Any) -> int:
    return int(pipe.unet.config.num_frames)


def _image(images: list[Any]) -> dict[str, Any]:
    return {"image": images[0]}


def _ltx_condition(images: list[Any]) -> dict[str, Any]:
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    # One condition holding the whole clip; `video=[...]` would read as one per frame.
    return {"conditions": [LTXVideoCondition(video=images, frame_index=0)]}


def _cosmos_condition(images: list[Any]) -> dict[str, Any]:
    return {"video": images} if len(images) > 1 else {"image": images[0]}


@dataclass(frozen=True)
class Family:
    """What differs between the supported pipelines: the adapter's code asks this, never a name.

    Attributes:
        name: the ``pipeline=`` value.
        class_name: the diffusers pipeline class.
        takes_prompt: whether the pipeline is text-conditioned (else the model is action-free).
        multi_frame: whether it can be conditioned on several frames (``c = m*k + 1``).
        resolution: default square frame side (the checkpoints' native short side).
        default_cond_frames: conditioning frames used when available (1 unless multi_frame).
        native_frames: the checkpoints' native clip length, or None to read it from the model.
        needs_safety_checker: the pipeline must run with its safety checker (cosmos).
        frame_multiple: pipe -> m such that a clip of m*n + 1 frames keeps its length through
            the VAE.
        spatial_multiple: pipe -> what height and width must divide by.
        fixed_size: pipe -> the only size the loaded checkpoint runs at (None: any).
        model_frames: pipe -> the native clip length when ``native_frames`` is None.
        conditioning: PIL images (the last c frames) -> the pipeline call's conditioning
            arguments.
    """

    name: str
    class_name: str
    takes_prompt: bool
    multi_frame: bool
    resolution: int
    default_cond_frames: int
    native_frames: int | None
    needs_safety_checker: bool = False
    frame_multiple: Callable[[Any], int] = _vae_temporal
    spatial_multiple: Callable[[Any], int] = _patch_spatial
    fixed_size: Callable[[Any], FixedSize | None] = _any_size
    model_frames: Callable[[Any], int] = _transformer_clip
    conditioning: Callable[[list[Any]], dict[str, Any]] = _image


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("wan", "WanImageToVideoPipeline", True, False, 480, 1, 81),
        Family(
            "cogvideox", "CogVideoXImageToVideoPipeline", True, False, 480, 1, None,
            frame_multiple=_cogvideox_temporal, spatial_multiple=_transformer_spatial(8),
            fixed_size=_cogvideox_size,
        ),
        Family(
            "ltx", "LTXImageToVideoPipeline", True, False, 512, 1, 161,
            frame_multiple=_ltx_temporal, spatial_multiple=_ltx_spatial,
        ),
        Family(
            "ltx-condition", "LTXConditionPipeline", True, True, 512, 9, 161,
            frame_multiple=_ltx_temporal, spatial_multiple=_ltx_spatial,
            conditioning=_ltx_condition,
        ),
        Family(
            "cosmos", "Cosmos2VideoToWorldPipeline", True, True, 704, 5, 93, True,
            spatial_multiple=_transformer_spatial(16), conditioning=_cosmos_condition,
        ),
        Family(
            "svd", "StableVideoDiffusionPipeline", False, False, 576, 1, None,
            frame_multiple=_one, spatial_multiple=_svd_spatial, model_frames=_unet_clip,
        ),
    )
}  # fmt: skip


def chunk_seed(seed: int, sample_seed: int, chunk: int) -> int:
    """The noise seed of one rollout's chunk: a hash of ``(seed, sample_seed, chunk)``.

    Args:
        seed: the adapter's ``seed`` option (an offset shared by all rollouts).
        sample_seed: the rollout's episode seed (``Context.seeds[b]``).
        chunk: the index of the step within the rollout (0 for the first step after reset).

    Returns:
        A non-negative 63-bit integer for ``torch.Generator.manual_seed``.
    """
    words = [int(seed), int(sample_seed), int(chunk)]
    if min(words) < 0:
        raise ConfigError(f"Expected non-negative seeds and chunk index, but got {words}.")
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


@dataclass(frozen=True)
class _State:
    """Rollouts in flight: recent frames uint8 [B, T, H, W, 3] at generation size, seeds, chunk."""

    history: np.ndarray
    seeds: tuple[int, ...]
    chunk: int


def _to_uint8(video: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] to uint8, rounding as diffusers' ``numpy_to_pil`` does."""
    return (np.clip(video, 0.0, 1.0) * 255).round().astype(np.uint8)


def _checkpoint_sha256(folder: Path) -> str:
    """sha256 of a manifest of every file in ``folder``: ``"relative/path sha256\\n"`` sorted."""
    from panbench.io import sha256_file

    lines = [
        f"{p.relative_to(folder).as_posix()} {sha256_file(p)}\n"
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


class DiffusersI2VModel(WorldModel):
    """An image-to-video diffusers pipeline continuing each rollout one chunk per action.

    Args:
        path: a local folder written by ``save_pretrained`` (or a downloaded hub snapshot), or a
            hub id (loads only where the hub is reachable or the id is in the local cache).
        pipeline: which family: wan, cogvideox, ltx, ltx-condition, cosmos or svd.
        resolution: side of the square frames the model takes and returns (``spec.resolution``);
            default: the family's native short side (wan 480, cogvideox 480, ltx 512,
            cosmos 704, svd 576).
        height: generation height; default ``resolution`` (cogvideox with learned positional
            embeddings: the size it was trained at). Frames are stretched to height x width
            before conditioning and back to the square afterwards.
        width: generation width; default as ``height``.
        frames_per_step: new frames per action (k); ``cond_frames + k`` must satisfy the
            family's frame rule. Default: the native clip length minus the conditioning frames
            (wan 80, cogvideox 48, ltx 160, ltx-condition 152, cosmos 88, svd the UNet's
            num_frames - 1).
        cond_frames: most conditioning frames per call (ltx-condition: 8k+1, default 9;
            cosmos: 4k+1, default 5; others 1). Fewer are used while the rollout is shorter.
        prompt_template: how an action becomes the prompt, with the fields ``{action}`` and
            ``{scene}``; default ``"{action}"``. Not accepted by svd.
        scene: text substituted for ``{scene}``.
        seed: offset mixed into every rollout's noise seed.
        dtype: float32 (default), bfloat16 or float16 for the pipeline's weights.
        offload: none (default), model (``enable_model_cpu_offload``) or sequential
            (``enable_sequential_cpu_offload``); model/sequential need an accelerator device.
        attention_backend: passed to the denoiser's ``set_attention_backend`` (e.g. "flash",
            "_native_cudnn", "sage"); default: diffusers' default (PyTorch SDPA).
        vae_tiling: decode with the VAE's tiling (less memory at high resolution).
        variant: weights variant to load (e.g. "fp16" for SVD's half-precision files).
        safety_checker: cosmos only: an object with ``check_text_safety`` and
            ``check_video_safety`` or a ``"module:Name"`` import path to one (a class is
            instantiated). Default: the real ``cosmos_guardrail.CosmosSafetyChecker``.
        checkpoint_hash: record the sha256 of the checkpoint folder in the results (reads every
            weight file once at the end of the run).
        **call_args: other keyword arguments of the pipeline's ``__call__``
            (``num_inference_steps``, ``guidance_scale``, ``negative_prompt``, ``fps``, ...).

    Raises:
        ConfigError: an unknown pipeline or option, a frame count that breaks the family's frame
            rule, a size the model cannot take, a missing safety checker, or a checkpoint that
            cannot be loaded.
    """

    def __init__(
        self,
        path: str,
        pipeline: str,
        resolution: int | None = None,
        height: int | None = None,
        width: int | None = None,
        frames_per_step: int | None = None,
        cond_frames: int | None = None,
        prompt_template: Any = None,
        scene: str = "",
        seed: int = 0,
        dtype: str = "float32",
        offload: str = "none",
        attention_backend: str | None = None,
        vae_tiling: bool = False,
        variant: str | None = None,
        safety_checker: Any = None,
        checkpoint_hash: bool = True,
        **call_args: Any,
    ) -> None:
        if pipeline not in FAMILIES:
            raise ConfigError(
                f"Unknown diffusers-i2v pipeline {pipeline!r}.{did_you_mean(str(pipeline), list(FAMILIES))}"
                f" Expected one of: {', '.join(FAMILIES)}."
            )
        self.family = family = FAMILIES[pipeline]
        self.path = str(path)
        self.seed = _int_option("seed", seed, minimum=0)
        self.scene = str(scene)
        self.prompt_template = self._check_template(prompt_template)
        if dtype not in _DTYPES:
            raise ConfigError(f"Expected dtype in {sorted(set(_DTYPES))}, but got {dtype!r}.")
        self.dtype = _DTYPES[dtype]
        if offload not in _OFFLOAD:
            raise ConfigError(f"Expected offload in {list(_OFFLOAD)}, but got {offload!r}.")
        self.offload = offload
        self.attention_backend = attention_backend
        self.vae_tiling = bool(vae_tiling)
        self.variant = variant
        self.checkpoint_hash = bool(checkpoint_hash)
        self._checker = self._resolve_checker(safety_checker)
        self._sha256: str | None = None
        self.device = "cpu"

        self.pipe = self._load()
        self.call_args = self._check_call_args(call_args)
        self.frame_multiple = self._frame_multiple()
        self.resolution = (
            family.resolution if resolution is None else _int_option("resolution", resolution)
        )
        self.height, self.width = self._generation_size(height, width)
        self.cond_frames = self._check_cond_frames(cond_frames)
        self.frames_per_step = self._check_frames_per_step(frames_per_step)
        self.spec = ModelSpec(
            name="diffusers-i2v",
            action_space=ActionSpace.TEXT if family.takes_prompt else ActionSpace.NONE,
            resolution=self.resolution,
            context_frames=self.cond_frames,
            frames_per_step=self.frames_per_step,
        )

    # ------------------------------------------------------------------------------ options
    def _check_template(self, template: Any) -> str | None:
        if not self.family.takes_prompt:
            if template is not None or self.scene:
                raise ConfigError(
                    f"Pipeline {self.family.name!r} takes no prompt, so prompt_template and "
                    f"scene do not apply, but got prompt_template={template!r}, "
                    f"scene={self.scene!r}."
                )
            return None
        if template is None:
            return "{action}"
        if not isinstance(template, str):
            raise ConfigError(
                f"Expected prompt_template to be a string such as '{{scene}}. {{action}}', but "
                f"got {template!r} ({type(template).__name__}); on the command line quote it: "
                "--model-args 'prompt_template=\"{scene}. {action}\"'."
            )
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        if not fields <= {"action", "scene"} or "action" not in fields:
            raise ConfigError(
                f"Expected prompt_template to use the field {{action}} and optionally {{scene}}, "
                f"but got {template!r} (fields: {sorted(fields)})."
            )
        return template

    def _resolve_checker(self, checker: Any) -> Any:
        if not self.family.needs_safety_checker:
            if checker is not None:
                raise ConfigError(
                    f"safety_checker applies to pipeline 'cosmos' only, not {self.family.name!r}."
                )
            return None
        if checker is None:
            try:
                from cosmos_guardrail import CosmosSafetyChecker
            except ImportError as err:
                raise ConfigError(
                    "Cosmos-Predict2 runs only with its safety checker (a condition of the NVIDIA "
                    "Open Model License), and the package cosmos_guardrail is not installed. "
                    "Install it where it can run (`pip install cosmos_guardrail`; it needs "
                    "torchvision and downloads its own guardrail models), or pass an explicit "
                    "checker with safety_checker=module:Name. panbench never runs Cosmos "
                    "without one."
                ) from err
            return CosmosSafetyChecker()
        if isinstance(checker, str):
            from panbench.registry import import_string

            try:
                checker = import_string(checker)
            except ImportError as err:
                raise ConfigError(f"Cannot import safety_checker {checker!r}: {err}.") from err
            if isinstance(checker, type):
                checker = checker()
        missing = [
            m
            for m in ("check_text_safety", "check_video_safety", "to")
            if not callable(getattr(checker, m, None))
        ]
        if missing:
            raise ConfigError(
                "Expected safety_checker to have the methods check_text_safety, "
                f"check_video_safety and to, but {type(checker).__name__} lacks {missing}."
            )
        return checker

    def _load(self) -> Any:
        import diffusers
        import torch

        cls = getattr(diffusers, self.family.class_name, None)
        if cls is None:
            raise ConfigError(
                f"diffusers {diffusers.__version__} has no {self.family.class_name}; install the "
                "i2v extra (pip install 'panbench[i2v]') for a recent diffusers."
            )
        kwargs: dict[str, Any] = {"torch_dtype": getattr(torch, self.dtype)}
        if self.variant is not None:
            kwargs["variant"] = self.variant
        if self._checker is not None:
            kwargs["safety_checker"] = self._checker
        local = Path(self.path).expanduser()
        where = str(local) if local.is_dir() else self.path
        try:
            pipe = cls.from_pretrained(where, **kwargs)
        except (OSError, ValueError) as err:
            hint = (
                ""
                if local.is_dir()
                else " It is not a local folder, so it was looked up as a hub id: download it "
                f"where the hub is reachable (`hf download {self.path} --local-dir DIR`) and "
                "pass path=DIR."
            )
            raise ConfigError(
                f"Cannot load a {self.family.class_name} from {self.path!r}: {err}.{hint}"
            ) from err
        except ImportError as err:  # e.g. accelerate, ftfy, sentencepiece
            raise ConfigError(
                f"Loading {self.family.class_name} needs a missing package: {err}. Install the "
                "i2v extra: pip install 'panbench[i2v]'."
            ) from err
        pipe.set_progress_bar_config(disable=True)
        if self.vae_tiling:
            if not callable(getattr(pipe.vae, "enable_tiling", None)):
                raise ConfigError(f"The {type(pipe.vae).__name__} VAE has no tiling.")
            pipe.vae.enable_tiling()
        if self.attention_backend is not None:
            for name in ("transformer", "transformer_2", "unet"):
                module = getattr(pipe, name, None)
                if module is None:
                    continue
                try:
                    module.set_attention_backend(self.attention_backend)
                except (AttributeError, ValueError, RuntimeError, ImportError) as err:
                    raise ConfigError(
                        f"Cannot set attention_backend={self.attention_backend!r} on "
                        f"{type(module).__name__}: {err}"
                    ) from err
        return pipe

    def _check_call_args(self, call_args: dict[str, Any]) -> dict[str, Any]:
        accepted = [
            p
            for p in inspect.signature(self.pipe.__call__).parameters
            if p not in _RESERVED and p not in ("self", "kwargs")
        ]
        for key in call_args:
            if key in _RESERVED:
                raise ConfigError(
                    f"Model argument {key!r} is set by the diffusers-i2v adapter itself "
                    "(see frames_per_step, cond_frames, height, width, prompt_template, seed)."
                )
            if key not in accepted:
                raise ConfigError(
                    f"Unknown model argument {key!r} for diffusers-i2v with pipeline "
                    f"{self.family.name!r}.{did_you_mean(key, accepted)} Adapter options: "
                    f"{', '.join(_ADAPTER_OPTIONS)}; {self.family.class_name}.__call__ options: "
                    f"{', '.join(accepted)}."
                )
        return dict(call_args)

    def _frame_multiple(self) -> int:
        """m such that a clip of num_frames = m*n + 1 frames keeps its length through the VAE."""
        return self.family.frame_multiple(self.pipe)

    def _generation_size(self, height: int | None, width: int | None) -> tuple[int, int]:
        fixed = self.family.fixed_size(self.pipe)
        if height is None:
            height = fixed.height if fixed else self.resolution
        if width is None:
            width = fixed.width if fixed else height
        height, width = _int_option("height", height), _int_option("width", width)
        if fixed is not None and (height, width) != (fixed.height, fixed.width):
            raise ConfigError(
                f"This {self.family.class_name} checkpoint {fixed.why} and runs only at "
                f"{fixed.height}x{fixed.width} (height x width), but got {height}x{width}."
            )
        # The latent patch size in pixels, and the multiple the pipeline's check_inputs wants.
        multiple = self.family.spatial_multiple(self.pipe)
        if height % multiple or width % multiple:
            raise ConfigError(
                f"Pipeline {self.family.name!r} needs height and width divisible by {multiple}, "
                f"but got {height}x{width} (resolution={self.resolution})."
            )
        return height, width

    def _check_cond_frames(self, cond_frames: int | None) -> int:
        family, m = self.family, self.frame_multiple
        if cond_frames is None:
            return family.default_cond_frames
        c = _int_option("cond_frames", cond_frames)
        if not family.multi_frame and c != 1:
            raise ConfigError(
                f"Pipeline {family.name!r} is conditioned on one frame, so cond_frames must be 1, "
                f"but got {c} (ltx-condition and cosmos take several)."
            )
        if (c - 1) % m:
            raise ConfigError(
                f"Pipeline {family.name!r} takes {m}k+1 conditioning frames (1, {m + 1}, "
                f"{2 * m + 1}, ...), but got cond_frames={c}."
            )
        return c

    def _native_frames(self) -> int:
        """The clip length the checkpoint was trained for (conditioning frames included)."""
        if self.family.native_frames is not None:
            return self.family.native_frames
        return self.family.model_frames(self.pipe)

    def _check_frames_per_step(self, frames_per_step: int | None) -> int:
        m = self.frame_multiple
        if frames_per_step is None:
            return max(self._native_frames() - self.cond_frames, m)
        k = _int_option("frames_per_step", frames_per_step)
        if k % m:
            lower = max(k // m * m, m)
            raise ConfigError(
                f"Pipeline {self.family.name!r} generates clips of {m}n+1 frames including the "
                f"conditioning, so frames_per_step must be a multiple of {m}, but got {k} "
                f"(try {lower} or {lower + m})."
            )
        return k

    # ------------------------------------------------------------------------------ the API
    def to(self, device: str) -> DiffusersI2VModel:
        """Moves the pipeline to ``device``, or sets up CPU offload onto it (``offload=``)."""
        if self.offload == "none":
            self.pipe.to(device)
        elif str(device).startswith("cpu"):
            raise ConfigError(
                f"offload={self.offload!r} moves weights between the CPU and an accelerator, "
                f"so it needs --device cuda (or another accelerator), but got {device!r}."
            )
        elif self.offload == "model":
            self.pipe.enable_model_cpu_offload(device=device)
        else:
            self.pipe.enable_sequential_cpu_offload(device=device)
        self.device = str(device)
        return self

    def reset(self, context: Context) -> _State:
        """Starts B rollouts from the last ``cond_frames`` context frames (uint8 [B,T,H,W,3])."""
        frames = np.asarray(context.frames)
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ContractError(
                f"Expected context frames uint8 [B,T,H,W,3], but got {frames.dtype} "
                f"{list(frames.shape)}."
            )
        if len(context.seeds) != frames.shape[0]:
            raise ContractError(
                f"Expected one seed per context ({frames.shape[0]}), but got {len(context.seeds)}."
            )
        history = resize_frames(
            frames[:, -self.cond_frames :], (self.height, self.width), mode="squash"
        )
        return _State(np.ascontiguousarray(history), tuple(int(s) for s in context.seeds), 0)

    def step(self, state: _State, actions: Sequence[Action]) -> tuple[_State, np.ndarray]:
        """Generates ``frames_per_step`` new frames per rollout, one pipeline call each.

        Returns:
            The new state and uint8 [B, frames_per_step, resolution, resolution, 3].
        """
        batch = state.history.shape[0]
        if len(actions) != batch:
            raise ContractError(f"Expected {batch} actions (one per rollout), got {len(actions)}.")
        c = self._usable_cond_frames(state.history.shape[1])
        new = np.stack(
            [
                self._generate(state.history[b, -c:], actions[b], state.seeds[b], state.chunk)
                for b in range(batch)
            ]
        )
        history = np.concatenate([state.history, new], axis=1)[:, -self.cond_frames :]
        next_state = _State(np.ascontiguousarray(history), state.seeds, state.chunk + 1)
        return next_state, resize_frames(new, self.resolution, mode="squash")

    def clone(self, state: _State) -> _State:
        """States are never mutated, so a branch can share the arrays."""
        return state

    def describe(self) -> dict[str, Any]:
        """Provenance: pipeline class, options, sizes, safety checker, checkpoint sha256."""
        import diffusers

        if self.checkpoint_hash and self._sha256 is None:
            folder = self._checkpoint_folder()
            self._sha256 = _checkpoint_sha256(folder) if folder is not None else None
        checker = self._checker
        return {
            "checkpoint_sha256": self._sha256,
            "pipeline": self.family.name,
            "pipeline_class": type(self.pipe).__name__,
            "path": self.path,
            "diffusers_version": diffusers.__version__,
            "height": self.height,
            "width": self.width,
            "num_frames": self.cond_frames + self.frames_per_step,
            "frame_multiple": self.frame_multiple,
            "dtype": self.dtype,
            "offload": self.offload,
            "attention_backend": self.attention_backend,
            "prompt_template": self.prompt_template,
            "seed": self.seed,
            "call_args": self.call_args,
            "safety_checker": (
                None if checker is None else f"{type(checker).__module__}.{type(checker).__name__}"
            ),
        }

    # ------------------------------------------------------------------------------ internals
    def _usable_cond_frames(self, available: int) -> int:
        """The largest valid conditioning length (m*k + 1) within ``cond_frames`` and history."""
        m, top = self.frame_multiple, min(self.cond_frames, available)
        return (top - 1) // m * m + 1

    def prompt(self, action: Action) -> str | None:
        """The prompt for ``action`` (None for action-free pipelines)."""
        if self.prompt_template is None:
            return None
        return self.prompt_template.format(action=action.text, scene=self.scene)

    def _generate(
        self, cond: np.ndarray, action: Action, sample_seed: int, chunk: int
    ) -> np.ndarray:
        """One pipeline call: cond uint8 [c, H, W, 3] -> new frames uint8 [k, H, W, 3]."""
        import PIL.Image
        import torch

        images = [PIL.Image.fromarray(f) for f in cond]
        c, k = len(images), self.frames_per_step
        kwargs: dict[str, Any] = dict(self.call_args)
        kwargs.update(self.family.conditioning(images))
        if self.family.takes_prompt:
            kwargs["prompt"] = self.prompt(action)
        generator = torch.Generator(device="cpu").manual_seed(
            chunk_seed(self.seed, sample_seed, chunk)
        )
        with torch.inference_mode():
            out = self.pipe(
                height=self.height,
                width=self.width,
                num_frames=c + k,
                generator=generator,
                output_type="np",
                **kwargs,
            )
        video = np.asarray(out.frames[0])
        expected = (c + k, self.height, self.width, 3)
        if video.shape != expected:
            raise ContractError(
                f"{self.family.class_name} returned a clip of shape {list(video.shape)} for "
                f"num_frames={c + k} at {self.height}x{self.width}, but {list(expected)} was "
                "expected (does the checkpoint follow the family's frame rule?)."
            )
        return _to_uint8(video[c:])

    def _checkpoint_folder(self) -> Path | None:
        local = Path(self.path).expanduser()
        if local.is_dir():
            return local
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.path, local_files_only=True))
        except Exception:  # not in the local cache: no hash rather than a download
            return None


_ADAPTER_OPTIONS = [
    p
    for p in inspect.signature(DiffusersI2VModel.__init__).parameters
    if p not in ("self", "call_args")
]


def _int_option(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"Expected {name} to be an integer >= {minimum}, but got {value!r}.")
    return int(value)
