"""Tests for the ``diffusers-i2v`` adapter on tiny random-weight pipelines of every family.

Each family's pipeline is built from config with random weights (tens to hundreds of thousands of
parameters), saved with ``save_pretrained`` and loaded back through the adapter, offline. The
tokenizer is a word-level ``tokenizers`` model over the shapes env's vocabulary, so no file is
downloaded and different actions give different prompts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("accelerate")
pytest.importorskip("ftfy")

import diffusers
import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin

from panbench.cli import main
from panbench.envs.base import Action
from panbench.errors import ConfigError, PanbenchError
from panbench.harness import evaluate
from panbench.models.api import ActionSpace, Context
from panbench.models.diffusers_i2v import FAMILIES, DiffusersI2VModel, chunk_seed
from panbench.models.registry import load_model
from panbench.results import read_samples, validate_results

RES = 32
# The shapes env's action vocabulary; other words map to <unk>.
WORDS = [
    *("move", "the", "a", "an", "up", "down", "left", "right", "wait", "add", "remove", "make"),
    *("red", "green", "blue", "yellow", "orange", "purple", "white", "black", "cyan", "magenta"),
    *("circle", "square", "triangle", "star", "cross", "diamond", "ring", "background", "ball"),
]

# ------------------------------------------------------------------------ tiny pipelines


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _text(umt5: bool = False) -> dict[str, Any]:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    tok = _tokenizer()
    kw: dict[str, Any] = dict(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=32, num_layers=1)
    kw.update(num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    torch.manual_seed(0)
    encoder = UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))
    return {"tokenizer": tok, "text_encoder": encoder}


def _wan_vae() -> Any:
    return diffusers.AutoencoderKLWan(
        base_dim=3,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )


def _ltx_parts() -> dict[str, Any]:
    torch.manual_seed(0)
    transformer = diffusers.LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=32,
    )
    vae = diffusers.AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
    return {"transformer": transformer, "vae": vae, "scheduler": scheduler, **_text()}


def build_wan() -> Any:
    text = _text(umt5=True)
    torch.manual_seed(0)
    transformer = diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4 + 4 + 4,  # noise latents, mask (4 = temporal factor), image latents
        out_channels=4,
        text_dim=32,
        freq_dim=32,
        ffn_dim=32,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return diffusers.WanImageToVideoPipeline(
        transformer=transformer,
        vae=_wan_vae(),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        image_encoder=None,
        image_processor=None,
        **text,
    )


def build_cogvideox() -> Any:
    text = _text()
    torch.manual_seed(0)
    transformer = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=RES // 8,
        sample_height=RES // 8,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    vae = diffusers.AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    return diffusers.CogVideoXImageToVideoPipeline(
        transformer=transformer, vae=vae, scheduler=diffusers.DDIMScheduler(), **text
    )


def build_ltx() -> Any:
    return diffusers.LTXImageToVideoPipeline(**_ltx_parts())


def build_ltx_condition() -> Any:
    return diffusers.LTXConditionPipeline(**_ltx_parts())


def build_cosmos() -> Any:
    text = _text()
    torch.manual_seed(0)
    transformer = diffusers.CosmosTransformer3DModel(
        in_channels=4 + 1,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=1,
        mlp_ratio=2,
        text_embed_dim=32,
        adaln_lora_dim=4,
        max_size=(4, 32, 32),
        patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=False,  # True calls torchvision transforms
        extra_pos_embed_type="learnable",
    )
    pipe = diffusers.Cosmos2VideoToWorldPipeline(
        transformer=transformer,
        vae=_wan_vae(),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True),
        safety_checker=RecordingChecker(),
        **text,
    )
    # Saved without a checker, like the published checkpoints: the adapter must supply one.
    pipe.register_modules(safety_checker=None)  # type: ignore[attr-defined]
    return pipe


def build_svd() -> Any:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = diffusers.UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 32),  # GroupNorm uses 32 groups
        layers_per_block=1,
        sample_size=RES // 8,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=16,
        num_attention_heads=2,
        projection_class_embeddings_input_dim=48,
        addition_time_embed_dim=16,
        num_frames=3,
    )
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    vae = diffusers.AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 32],
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
    )
    # The pipeline resizes its conditioning image to 224x224 for CLIP.
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=16,
            projection_dim=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=224,
            intermediate_size=16,
            patch_size=32,
        )
    )
    return diffusers.StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )


class RecordingChecker(ModelMixin, ConfigMixin):  # type: ignore[misc]
    """A test-only stand-in for ``cosmos_guardrail.CosmosSafetyChecker``: allows everything and
    records what it was shown, so a test can see that the pipeline consulted it."""

    calls: ClassVar[
        list[tuple[str, Any]]
    ] = []  # class-level: instances built from an import path too

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_device_tracker", torch.zeros(1), persistent=False)

    def check_text_safety(self, prompt: str) -> bool:
        RecordingChecker.calls.append(("text", prompt))
        return True

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray:
        RecordingChecker.calls.append(("video", frames.shape))
        return frames

    @property
    def device(self) -> torch.device:
        return self._device_tracker.device

    @property
    def dtype(self) -> torch.dtype:
        return self._device_tracker.dtype


class RefusingChecker(RecordingChecker):
    """Refuses every prompt, as the real guardrail does for unsafe text."""

    def check_text_safety(self, prompt: str) -> bool:
        return False


BUILDERS: dict[str, Callable[[], Any]] = {
    "wan": build_wan,
    "cogvideox": build_cogvideox,
    "ltx": build_ltx,
    "ltx-condition": build_ltx_condition,
    "cosmos": build_cosmos,
    "svd": build_svd,
}

# Fast settings per family: 2 denoising steps, no classifier-free guidance, one latent chunk.
ARGS: dict[str, dict[str, Any]] = {
    "wan": {"frames_per_step": 4, "guidance_scale": 1.0, "max_sequence_length": 16},
    "cogvideox": {"frames_per_step": 8, "guidance_scale": 1.0, "max_sequence_length": 16},
    "ltx": {"frames_per_step": 8, "guidance_scale": 1.0, "max_sequence_length": 16},
    "ltx-condition": {"frames_per_step": 8, "guidance_scale": 1.0, "max_sequence_length": 16},
    "cosmos": {
        "frames_per_step": 4,
        "guidance_scale": 1.0,
        "max_sequence_length": 16,
        "safety_checker": "tests.models.test_diffusers_i2v:RecordingChecker",
    },
    "svd": {"frames_per_step": 2, "min_guidance_scale": 1.0, "max_guidance_scale": 1.0},
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny pipelines run 5-15x faster on one thread when the cores are shared (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Saves each family's tiny pipeline once per module, on first use; returns its folder."""
    folders: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in folders:
            folder = tmp_path_factory.mktemp(family)
            BUILDERS[family]().save_pretrained(folder)
            folders[family] = folder
        return folders[family]

    return get


def model_args(saved: Callable[[str], Path], family: str, **over: Any) -> dict[str, Any]:
    args = {"path": str(saved(family)), "pipeline": family, "resolution": RES}
    args.update(num_inference_steps=2, **ARGS[family])
    args.update(over)
    return args


def make(saved: Callable[[str], Path], family: str, **over: Any) -> DiffusersI2VModel:
    model = load_model("diffusers-i2v", model_args(saved, family, **over))
    assert isinstance(model, DiffusersI2VModel)
    return model


def context(batch: int, frames: int = 2, seeds: list[int] | None = None) -> Context:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (batch, frames, RES, RES, 3), dtype=np.uint8)
    return Context(frames=video, actions=[[] for _ in range(batch)], seeds=seeds or [7] * batch)


ACTIONS = [Action(0, "move the red circle up"), Action(1, "move the blue square left")]


class Recorder:
    """Wraps a pipeline and records the keyword arguments of every call."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.pipe(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


# ------------------------------------------------------------------------ the adapter itself


@pytest.mark.parametrize("family", list(FAMILIES))
def test_steps_return_the_new_frames_of_each_chunk(
    saved: Callable[[str], Path], family: str
) -> None:
    model = make(saved, family)
    model.pipe = recorder = Recorder(model.pipe)
    k = model.frames_per_step
    assert model.spec.frames_per_step == k == ARGS[family]["frames_per_step"]
    assert model.spec.resolution == RES
    assert model.spec.action_space is (ActionSpace.NONE if family == "svd" else ActionSpace.TEXT)
    state = model.reset(context(2))
    for _ in range(2):
        state, frames = model.step(state, ACTIONS)
        assert frames.dtype == np.uint8 and frames.shape == (2, k, RES, RES, 3)
        assert frames.std() > 0  # a real decoded video, not a blank
    # One call per rollout and step; clip = conditioning + k new frames, in the family's rule.
    assert len(recorder.calls) == 4
    m = model.frame_multiple
    for call in recorder.calls:
        assert (call["num_frames"] - 1) % m == 0
        assert call["height"] == call["width"] == RES
    conds = [call["num_frames"] - k for call in recorder.calls]
    if family == "ltx-condition":  # 2 context frames -> 1; after a chunk of 8 -> 9
        assert conds == [1, 1, 9, 9]
        videos = [c["conditions"][0].video for c in recorder.calls]
        assert [len(v) for v in videos] == conds
    elif family == "cosmos":  # m = 4: 2 context frames -> 1; after a chunk of 4 -> 5
        assert conds == [1, 1, 5, 5]
        assert "image" in recorder.calls[0] and len(recorder.calls[2]["video"]) == 5
    else:
        assert conds == [1, 1, 1, 1]
    if family == "svd":
        assert all("prompt" not in c for c in recorder.calls)
    else:
        assert [c["prompt"] for c in recorder.calls] == [a.text for a in ACTIONS] * 2


def _conditioning(call: dict[str, Any]) -> np.ndarray:
    """The frames a recorded pipeline call was conditioned on, uint8 [c, H, W, 3]."""
    if "conditions" in call:
        frames = call["conditions"][0].video
    elif "video" in call:
        frames = call["video"]
    else:
        frames = [call["image"]]
    return np.stack([np.asarray(f) for f in frames])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_conditioning_is_the_last_frames_seen(saved: Callable[[str], Path], family: str) -> None:
    model = make(saved, family)
    model.pipe = recorder = Recorder(model.pipe)
    ctx = context(1)
    state, frames = model.step(model.reset(ctx), ACTIONS[:1])
    model.step(state, ACTIONS[:1])
    first, second = (_conditioning(c) for c in recorder.calls)
    np.testing.assert_array_equal(first[-1], ctx.frames[0, -1])
    # The next call is conditioned on the frames just returned (all of them when it can take
    # several: 1 context frame + the chunk of 4 or 8), never on the dropped duplicate.
    k = model.frames_per_step
    expected = frames[0] if family in ("ltx-condition", "cosmos") else frames[0, -1:]
    np.testing.assert_array_equal(second[-len(expected) :], expected)
    assert len(second) == (1 + k if family in ("ltx-condition", "cosmos") else 1)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_same_seed_same_frames_other_seed_other_frames_any_batch(
    saved: Callable[[str], Path], family: str
) -> None:
    model = make(saved, family)
    ctx = context(2, seeds=[3, 4])

    def rollout(model: DiffusersI2VModel, ctx: Context, actions: list[Action]) -> np.ndarray:
        state = model.reset(ctx)
        out = []
        for _ in range(2):
            state, frames = model.step(state, actions)
            out.append(frames)
        return np.concatenate(out, axis=1)

    both = rollout(model, ctx, ACTIONS)
    again = rollout(make(saved, family), ctx, ACTIONS)  # a freshly loaded model
    np.testing.assert_array_equal(both, again)
    # Each rollout alone (batch of one) gives exactly what it gave in the batch of two.
    for b in range(2):
        alone = Context(ctx.frames[b : b + 1], [[]], [ctx.seeds[b]])
        np.testing.assert_array_equal(rollout(model, alone, ACTIONS[b : b + 1]), both[b : b + 1])
    other_seed = rollout(make(saved, family, seed=1), ctx, ACTIONS)
    assert np.abs(other_seed.astype(int) - both).max() > 0
    other_episode = rollout(model, Context(ctx.frames, ctx.actions, [5, 6]), ACTIONS)
    assert np.abs(other_episode.astype(int) - both).max() > 0


def test_a_branch_is_independent_and_shares_its_next_noise(saved: Callable[[str], Path]) -> None:
    model = make(saved, "wan")
    state = model.reset(context(1))
    branch = model.clone(state)
    state_a, frames_a = model.step(state, ACTIONS[:1])
    _, frames_b = model.step(branch, ACTIONS[:1])
    np.testing.assert_array_equal(frames_a, frames_b)  # same action, same chunk noise
    _, frames_c = model.step(branch, ACTIONS[1:])
    assert np.abs(frames_c.astype(int) - frames_a).max() > 0  # the action reaches the model
    assert state_a.chunk == 1 and branch.chunk == 0


def test_chunk_seed_depends_on_every_part() -> None:
    base = chunk_seed(0, 7, 0)
    assert base == chunk_seed(0, 7, 0)
    variants = {chunk_seed(1, 7, 0), chunk_seed(0, 8, 0), chunk_seed(0, 7, 1), base}
    assert len(variants) == 4
    assert all(0 <= s < 2**63 for s in variants)
    with pytest.raises(ConfigError, match="non-negative"):
        chunk_seed(0, -1, 0)


def test_prompt_template_and_scene(saved: Callable[[str], Path]) -> None:
    model = make(saved, "wan", prompt_template="{scene}. {action}", scene="coloured shapes")
    model.pipe = recorder = Recorder(model.pipe)
    assert model.prompt(ACTIONS[0]) == "coloured shapes. move the red circle up"
    model.step(model.reset(context(1)), ACTIONS[:1])
    assert recorder.calls[0]["prompt"] == "coloured shapes. move the red circle up"


def test_non_square_generation_size_round_trips_to_the_square(
    saved: Callable[[str], Path],
) -> None:
    model = make(saved, "wan", height=RES, width=2 * RES)
    model.pipe = recorder = Recorder(model.pipe)
    state, frames = model.step(model.reset(context(1)), ACTIONS[:1])
    assert recorder.calls[0]["image"].size == (2 * RES, RES)  # PIL: (width, height)
    assert frames.shape == (1, model.frames_per_step, RES, RES, 3)
    assert state.history.shape[2:4] == (RES, 2 * RES)  # the model sees its own output


def test_cosmos_consults_its_safety_checker(saved: Callable[[str], Path]) -> None:
    checker = RecordingChecker()
    RecordingChecker.calls.clear()
    model = make(saved, "cosmos", safety_checker=checker)
    assert model.pipe.safety_checker is checker
    model.step(model.reset(context(1)), ACTIONS[:1])
    kinds = [kind for kind, _ in RecordingChecker.calls]
    assert ("text", ACTIONS[0].text) in RecordingChecker.calls and "video" in kinds
    assert model.describe()["safety_checker"].endswith("RecordingChecker")
    refusing = make(saved, "cosmos", safety_checker=RefusingChecker())
    with pytest.raises(ValueError, match="unsafe"):
        refusing.step(refusing.reset(context(1)), ACTIONS[:1])


def test_cosmos_without_a_checker_is_refused(saved: Callable[[str], Path]) -> None:
    try:  # it needs torchvision, which panbench never installs
        import cosmos_guardrail  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("cosmos_guardrail is installed: the real checker would be built")
    args = model_args(saved, "cosmos")
    args.pop("safety_checker")
    with pytest.raises(ConfigError, match=r"safety checker.*cosmos_guardrail"):
        load_model("diffusers-i2v", args)


def _manifest_sha256(folder: Path) -> str:
    """Independent of the adapter: os.walk instead of rglob, hashlib on whole files."""
    import os

    lines = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(root) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{path.relative_to(folder).as_posix()} {digest}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def test_describe_records_the_checkpoint_and_options(saved: Callable[[str], Path]) -> None:
    model = make(saved, "wan")
    info = model.describe()
    assert info["checkpoint_sha256"] == _manifest_sha256(saved("wan"))
    assert info["pipeline_class"] == "WanImageToVideoPipeline"
    assert info["num_frames"] == 1 + model.frames_per_step
    assert info["call_args"]["num_inference_steps"] == 2
    json.dumps(info)  # results.json must be able to hold it
    assert make(saved, "wan", checkpoint_hash=False).describe()["checkpoint_sha256"] is None


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"pipeline": "wann"}, "Unknown diffusers-i2v pipeline 'wann'.*Did you mean: wan"),
        ({"frames_per_step": 6}, "multiple of 4.*got 6.*try 4 or 8"),
        ({"cond_frames": 5}, "cond_frames must be 1"),
        ({"prompt_template": {"action": None}}, "quote it"),
        ({"prompt_template": "{verb}"}, "field {action}"),
        ({"num_frames": 9}, "set by the diffusers-i2v adapter"),
        ({"num_inference_step": 3}, "Did you mean: num_inference_steps"),
        ({"safety_checker": "x:Y"}, "'cosmos' only"),
        ({"dtype": "float64"}, "dtype"),
        ({"offload": "disk"}, "offload"),
        ({"resolution": 40}, "divisible by 16"),
        ({"path": "/nonexistent/folder"}, "Cannot load a WanImageToVideoPipeline"),
    ],
)
def test_bad_options_are_refused_clearly(
    saved: Callable[[str], Path], over: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        load_model("diffusers-i2v", model_args(saved, "wan", **over))


def test_family_specific_refusals(saved: Callable[[str], Path]) -> None:
    with pytest.raises(ConfigError, match="takes no prompt"):
        make(saved, "svd", prompt_template="{action}")
    with pytest.raises(ConfigError, match=r"learned positional embeddings.*32x32"):
        make(saved, "cogvideox", width=64)
    with pytest.raises(ConfigError, match=r"k\+1 conditioning frames.*cond_frames=3"):
        make(saved, "ltx-condition", cond_frames=3)
    with pytest.raises(ConfigError, match="needs --device cuda"):
        make(saved, "wan", offload="model").to("cpu")


def test_a_hub_id_that_is_not_cached_says_how_to_download(saved: Callable[[str], Path]) -> None:
    with pytest.raises(PanbenchError, match="hf download"):
        load_model("diffusers-i2v", model_args(saved, "wan", path="no-such-org/no-such-model"))


# ------------------------------------------------------------------------ end to end


def _samples(out: Path, tasks: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {t: read_samples(out / "samples" / f"{t}.jsonl") for t in tasks}


def _quick_part(path: Path, tasks: list[str]) -> str:
    """Writes a suite with some of ``quick``'s tasks and the same overrides (same episodes)."""
    from importlib.resources import files

    import yaml

    quick = yaml.safe_load((files("panbench.tasks") / "suites" / "quick.yaml").read_text())
    quick.update(suite=path.stem, tasks=[t for t in quick["tasks"] if t["task"] in tasks])
    assert len(quick["tasks"]) == len(tasks)
    path.write_text(yaml.safe_dump(quick))
    return str(path)


def test_wan_on_the_quick_suite_from_the_command_line(
    saved: Callable[[str], Path], tmp_path: Path
) -> None:
    """The check from the issue: a freshly saved tiny Wan, ``panbench evaluate`` on ``quick``."""
    args = model_args(saved, "wan")
    argv = ["evaluate", "--model", "diffusers-i2v", "--suite", "quick", "--limit", "2"]
    kv = ",".join(f"{k}={v}" for k, v in args.items())
    assert main([*argv, "--model-args", kv, "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    validate_results(tmp_path / "a")
    assert results["model"]["spec"]["frames_per_step"] == 4
    assert results["model"]["info"]["pipeline_class"] == "WanImageToVideoPipeline"
    tasks = list(results["tasks"])
    assert len(tasks) >= 6 and all(results["tasks"][t]["n_episodes"] == 2 for t in tasks)
    assert all(results["tasks"][t]["timing"]["model"]["step_calls"] > 0 for t in tasks)
    # Reproducible and batch-size independent: a batch of one gives the same samples.
    some = ["agent-sim", "stepwise-sim", "counterfactual"]
    part = _quick_part(tmp_path / "quick-part.yaml", some)
    evaluate("diffusers-i2v", args, out=tmp_path / "b", suite=part, limit=2, batch_size=1,
             progress=False)  # fmt: skip
    assert _samples(tmp_path / "b", some) == _samples(tmp_path / "a", some)
    # Another seed gives other frames, hence other pixel scores.
    part = _quick_part(tmp_path / "quick-agent.yaml", ["agent-sim"])
    evaluate("diffusers-i2v", {**args, "seed": 1}, out=tmp_path / "c", suite=part, limit=2,
             progress=False)  # fmt: skip
    psnr = [
        [r["metrics"]["psnr"] for r in _samples(tmp_path / d, ["agent-sim"])["agent-sim"]]
        for d in "ac"
    ]
    assert psnr[0] != psnr[1]


def _e2e(saved: Callable[[str], Path], family: str, out: Path, **kw: Any) -> dict[str, Any]:
    RecordingChecker.calls.clear()
    results = evaluate("diffusers-i2v", model_args(saved, family), out=out, limit=2, **kw)
    validate_results(out)
    assert results["model"]["spec"]["frames_per_step"] == ARGS[family]["frames_per_step"]
    if family == "cosmos":  # the checker named by import path ran on every prompt and clip
        kinds = {kind for kind, _ in RecordingChecker.calls}
        assert kinds == {"text", "video"}
        assert results["model"]["info"]["safety_checker"].endswith("RecordingChecker")
    return results


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "wan"])
def test_every_family_runs_quick_tasks_end_to_end(
    saved: Callable[[str], Path], family: str, tmp_path: Path
) -> None:
    tasks = ["agent-sim", "counterfactual"]
    results = _e2e(saved, family, tmp_path, tasks=tasks, progress=False)
    assert sorted(results["tasks"]) == sorted(tasks)


@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "wan"])
def test_every_family_runs_the_whole_quick_suite(
    saved: Callable[[str], Path], family: str, tmp_path: Path
) -> None:
    results = _e2e(saved, family, tmp_path, suite="quick", progress=False)
    assert all(t["n_episodes"] == 2 for t in results["tasks"].values())
