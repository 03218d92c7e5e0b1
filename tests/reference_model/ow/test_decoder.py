"""Decoder g on Wan: zero-initialised state stream, chunk-causal masks, Causal Swin-DPM, save/load.

Tiny random configs of the real classes (WanTransformer3DModel: 2 layers, 2 heads x 8; a tiny
AutoencoderKLWan; a tiny UMT5EncoderModel) and the offline tokenizer; CPU, seconds.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

from panbench.errors import ConfigError, ContractError
from reference_model.ow.decoder import (
    STATE_STREAM_FILE,
    OWDecoder,
    OWDecoderConfig,
    OWTransformerBlock,
    add_state_stream,
    enable_chunk_attention,
    is_state_stream_parameter,
    window_masks,
)
from reference_model.ow.tokenizers import offline_tokenizer

TINY_TRANSFORMER: dict[str, Any] = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "in_channels": 4,
    "out_channels": 4,
    "text_dim": 16,
    "freq_dim": 16,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "rope_max_seq_len": 32,
}
TINY_VAE: dict[str, Any] = {
    "base_dim": 8,
    "z_dim": 4,
    "dim_mult": [1, 1, 1],
    "num_res_blocks": 1,
    "temperal_downsample": [True, True],
    "latents_mean": [0.1, -0.2, 0.3, 0.0],
    "latents_std": [1.5, 0.5, 2.0, 1.0],
}
TINY_UMT5: dict[str, Any] = {
    "vocab_size": 300,
    "d_model": 16,
    "d_kv": 8,
    "d_ff": 32,
    "num_layers": 1,
    "num_heads": 2,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
STATE_DIM, F, L, S = 6, 2, 8, 3  # state width, latent frames per chunk, text and state tokens
B, C, H = 2, 4, 4  # batch, latent channels, latent size (4x4 latents: 2x2 tokens per frame)


def tiny_decoder_config(**overrides: Any) -> OWDecoderConfig:
    """The tiny decoder used here (engineer C's tests may import it)."""
    base = OWDecoderConfig(
        transformer_config=dict(TINY_TRANSFORMER),
        vae_config=dict(TINY_VAE),
        text_encoder_config=dict(TINY_UMT5),
        state_dim=STATE_DIM,
        chunk_frames=F,
        text_len=L,
        sample_steps=4,
        shift=1.0,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    # Bit-exact comparisons do not need it, but a shared 2-core machine runs faster this way.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def wan_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real-layout diffusers Wan folder of tiny random models, written with save_pretrained."""
    root = tmp_path_factory.mktemp("wan")
    torch.manual_seed(1)
    transformer: Any = WanTransformer3DModel(**TINY_TRANSFORMER)
    transformer.save_pretrained(root / "transformer")
    vae: Any = AutoencoderKLWan(**TINY_VAE)
    vae.save_pretrained(root / "vae")
    UMT5EncoderModel(UMT5Config(**TINY_UMT5)).save_pretrained(root / "text_encoder")
    offline_tokenizer().save_pretrained(root / "tokenizer")
    return root


def _decoder(wan_folder: Path, **overrides: Any) -> OWDecoder:
    cfg = tiny_decoder_config(
        pretrained_path=str(wan_folder),
        transformer_config={},
        vae_config={},
        text_encoder_config={},
        **overrides,
    )
    return OWDecoder(cfg)


def _pristine(wan_folder: Path) -> Any:
    return WanTransformer3DModel.from_pretrained(
        str(wan_folder / "transformer"), local_files_only=True
    )


def _inputs(k: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "latents": torch.randn(B, C, 1 + k * F, H, H, generator=g),
        "sigmas": torch.rand(B, 1 + k * F, generator=g),
        "text": torch.randn(B, k, L, 16, generator=g),
        "state": torch.randn(B, k, S, STATE_DIM, generator=g),
        "cond": torch.randn(B, C, 1, H, H, generator=g),
        "target": torch.randn(B, C, k * F, H, H, generator=g),
    }


def _gen(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- zero init


def test_state_stream_is_exactly_a_no_op_at_init(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    pristine = _pristine(wan_folder)
    x = _inputs(1)
    latents, sigmas = x["latents"][:, :, :F], x["sigmas"][:, :F]
    with torch.no_grad():
        # The unmodified pretrained decoder, through diffusers' own forward (per-token timesteps).
        timestep = (sigmas * 1000).repeat_interleave(4, dim=1)
        expected = pristine(latents, timestep, x["text"][:, 0]).sample
        without = dec(latents, sigmas, x["text"], None, has_cond=False)
        with_state = dec(latents, sigmas, x["text"], x["state"], has_cond=False)
    assert torch.equal(without, expected)
    assert torch.equal(with_state, expected)


def test_state_stream_no_op_under_chunk_masks_then_trains(wan_folder: Path) -> None:
    dec = _decoder(wan_folder, train_scope="state")
    reference = _decoder(wan_folder)
    reference.transformer = _pristine(wan_folder)  # no state stream, same pretrained weights
    enable_chunk_attention(reference.transformer)
    x = _inputs(3)
    args = (x["latents"], x["sigmas"], x["text"])
    with torch.no_grad():
        expected = reference(*args, None)
        assert torch.equal(dec(*args, x["state"]), expected)
        assert torch.equal(dec(*args, None), expected)

    params = dec.trainable_parameters()
    assert params and all(is_state_stream_parameter(n) for n in params)
    opt = torch.optim.SGD(list(params.values()), lr=0.1)
    dec.loss(x["cond"], x["target"], x["text"], x["state"], _gen()).backward()
    opt.step()
    with torch.no_grad():
        assert not torch.equal(dec(*args, x["state"]), expected)
        assert torch.equal(dec(*args, None), expected)  # stage 1 path untouched


def test_state_stream_structure_and_names() -> None:
    torch.manual_seed(0)
    tr: Any = WanTransformer3DModel(**TINY_TRANSFORMER)
    add_state_stream(tr, STATE_DIM)
    for block in tr.blocks:
        assert isinstance(block, OWTransformerBlock)
        copy: Any = block.state_attn
        text: Any = block.attn2
        assert torch.equal(copy.to_q.weight, text.to_q.weight)
        assert torch.equal(copy.to_k.weight, text.to_k.weight)
        assert not bool(copy.to_out[0].weight.any())
        assert not bool(copy.to_out[0].bias.any())
        assert copy.to_q.weight is not text.to_q.weight
    names = [n for n, _ in tr.named_parameters() if is_state_stream_parameter(n)]
    assert any(n.startswith("state_embedder.") for n in names)
    assert any(n.startswith("blocks.1.state_attn.") for n in names)
    assert not is_state_stream_parameter("blocks.0.attn2.to_q.weight")
    assert is_state_stream_parameter("transformer.blocks.0.state_attn.to_q.weight")
    assert tr.state_embedder.linear_1.in_features == STATE_DIM
    with pytest.raises(ConfigError, match="already has a state stream"):
        add_state_stream(tr, STATE_DIM)
    # As wide as the text: the state projection starts as a copy of the text projection.
    wide: Any = WanTransformer3DModel(**TINY_TRANSFORMER)
    add_state_stream(wide, TINY_TRANSFORMER["text_dim"])
    text_proj = wide.condition_embedder.text_embedder
    assert torch.equal(wide.state_embedder.linear_2.weight, text_proj.linear_2.weight)
    assert wide.state_embedder.linear_1.weight is not text_proj.linear_1.weight


# --------------------------------------------------------------------------- causal mask


def test_training_forward_is_chunk_causal(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    with torch.no_grad():  # make the state stream matter, so the state check means something
        for block in dec.transformer.blocks:
            block.state_attn.to_out[0].weight.normal_()
    x = _inputs(3)
    base = dec(x["latents"], x["sigmas"], x["text"], x["state"])
    text2, state2 = x["text"].clone(), x["state"].clone()
    text2[:, 1] += 1.0
    state2[:, 1] += 1.0
    changed = dec(x["latents"], x["sigmas"], text2, state2)
    chunk1 = slice(0, 1 + F)  # cond frame and chunk 1
    assert torch.equal(changed[:, :, chunk1], base[:, :, chunk1])
    assert not torch.equal(changed[:, :, 1 + F :], base[:, :, 1 + F :])
    latents3 = x["latents"].clone()
    latents3[:, :, 1 + 2 * F :] += 1.0  # chunk 3's latents do not reach chunks 1-2
    later = dec(latents3, x["sigmas"], x["text"], x["state"])
    assert torch.equal(later[:, :, : 1 + 2 * F], base[:, :, : 1 + 2 * F])
    text1 = x["text"].clone()
    text1[:, 0] += 1.0
    earlier = dec(x["latents"], x["sigmas"], text1, x["state"])
    assert not torch.equal(earlier[:, :, 1 + F : 1 + 2 * F], base[:, :, 1 + F : 1 + 2 * F])


@pytest.mark.parametrize("mode", ["swin", "chunk"])
def test_rollout_is_chunk_causal(wan_folder: Path, mode: str) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(3)
    base = dec.rollout(x["cond"], x["text"], x["state"], mode=mode, generator=_gen())
    assert base.shape == (B, C, 3 * F, H, H)
    text2, state2 = x["text"].clone(), x["state"].clone()
    text2[:, 1] += 1.0
    state2[:, 1] += 1.0
    changed = dec.rollout(x["cond"], text2, state2, mode=mode, generator=_gen())
    assert torch.equal(changed[:, :, :F], base[:, :, :F])
    assert not torch.equal(changed[:, :, F:], base[:, :, F:])
    text1 = x["text"].clone()
    text1[:, 0] += 1.0
    earlier = dec.rollout(x["cond"], text1, x["state"], mode=mode, generator=_gen())
    assert not torch.equal(earlier[:, :, F : 2 * F], base[:, :, F : 2 * F])


def test_window_masks_hand_table() -> None:
    # Window [cond | slot 1 (empty) | slot 2], one frame and one token per slot, 1 text token.
    m = window_masks(torch.tensor([[False, True]]), True, 1, 1, 1, 1)
    t, f = True, False
    assert m["self"][0, 0].tolist() == [[t, f, f], [f, t, f], [t, f, t]]
    assert m["text"][0, 0].tolist() == [[f, t], [t, f], [f, t]]  # cond reads the first chunk
    assert m["positions"].tolist() == [[0, 0, 1]]  # the chunk sits right after the cond frame
    full = window_masks(torch.tensor([[True, True]]), True, 2, 1, 1, 0)
    assert full["self"][0, 0].tolist() == [
        [t, f, f, f, f],
        [t, t, t, f, f],
        [t, t, t, f, f],
        [t, t, t, t, t],
        [t, t, t, t, t],
    ]
    assert full["state"] is None and full["positions"].tolist() == [[0, 1, 2, 3, 4]]
    assert window_masks(torch.tensor([[True]]), False, 2, 3, 2, 2)["self"] is None
    with pytest.raises(ContractError, match="a chunk in every row"):
        window_masks(torch.tensor([[False, False]]), True, 1, 1, 1, 0)


# --------------------------------------------------------------------------- Swin-DPM


def test_swin_rollout_follows_the_window_table(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)  # 4 steps, shift 1: sigmas 1, .75, .5, .25, 0
    calls: list[tuple[list[float], list[bool], torch.Tensor]] = []

    def record(_: Any, args: tuple[Any, ...]) -> None:
        calls.append((args[1][0].tolist(), args[4][0].tolist(), args[0][:, :, :1].clone()))

    hook = dec.register_forward_pre_hook(record)
    x = _inputs(3)
    cond = torch.full_like(x["cond"], 10.0)
    dec.rollout(cond, x["text"], x["state"], mode="swin", generator=_gen())
    hook.remove()
    k = 0.055
    # (earlier slot sigma or None, later slot sigma or None) at each network call.
    table = [
        (None, 1.0),
        (None, 0.75),  # phase 0: chunk 1 enters
        (0.5, 1.0),
        (0.25, 0.75),  # phase 1: chunk 1 finishes, chunk 2 enters
        (0.5, 1.0),
        (0.25, 0.75),  # phase 2
        (0.5, None),
        (0.25, None),  # phase 3: chunk 3 finishes alone
    ]
    assert len(calls) == len(table)
    for (sigmas, present, _), (earlier, later) in zip(calls, table, strict=True):
        assert present == [earlier is not None, later is not None]
        assert sigmas[0] == pytest.approx(k)
        assert sigmas[1 : 1 + F] == pytest.approx([earlier or 1.0] * F)
        assert sigmas[1 + F :] == pytest.approx([later or 1.0] * F)
    # The first two phases condition on the context latent, noised at k = 0.055.
    for _, _, cond_in in calls[:4]:
        assert abs(float(cond_in.mean()) - (1 - k) * 10.0) < 0.03
        assert abs(float((cond_in - (1 - k) * 10.0).std()) - k) < 0.02


@pytest.mark.parametrize("mode", ["swin", "chunk"])
def test_stepwise_equals_full_rollout(wan_folder: Path, mode: str) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(3)
    full = dec.rollout(x["cond"], x["text"], x["state"], mode=mode, generator=_gen())
    stream = dec.start_stream(x["cond"], generator=_gen(), mode=mode)
    parts = [dec.stream_step(stream, x["text"][:, i], x["state"][:, i]) for i in range(3)]
    assert torch.equal(torch.cat(parts, 2), full)
    assert stream.chunks_done == 3


def test_stepwise_equals_full_rollout_per_row_generators(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(2)
    gens = [_gen(1), _gen(2)]
    full = dec.rollout(x["cond"], x["text"], None, mode="swin", generator=gens)
    stream = dec.start_stream(x["cond"], generator=[_gen(1), _gen(2)], mode="swin")
    parts = [dec.stream_step(stream, x["text"][:, i]) for i in range(2)]
    assert torch.equal(torch.cat(parts, 2), full)
    # Row 0 alone, with its own generator, gives the same chunk: batch-size independent noise.
    alone = dec.rollout(x["cond"][:1], x["text"][:1], None, mode="swin", generator=[_gen(1)])
    assert torch.allclose(alone, full[:1], atol=1e-5)


def test_swin_and_chunk_modes_differ(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(2)
    swin = dec.rollout(x["cond"], x["text"], None, mode="swin", generator=_gen())
    chunk = dec.rollout(x["cond"], x["text"], None, mode="chunk", generator=_gen())
    assert swin.shape == chunk.shape and not torch.equal(swin, chunk)
    assert bool(torch.isfinite(swin).all())


# --------------------------------------------------------------------------- training loss


def test_loss_ignores_the_cond_frame_prediction(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(2)
    base = dec.loss(x["cond"], x["target"], x["text"], x["state"], _gen())
    seen: dict[str, Any] = {}

    def perturb(_: Any, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
        seen["sigmas"], seen["present"] = args[1], args[4]
        out = out.clone()
        out[:, :, 0] += 1000.0
        out.retain_grad()
        seen["out"] = out
        return out

    hook = dec.register_forward_hook(perturb)
    loss = dec.loss(x["cond"], x["target"], x["text"], x["state"], _gen())
    hook.remove()
    assert torch.equal(loss, base)
    loss.backward()
    grad = seen["out"].grad
    assert not bool(grad[:, :, 0].any())  # no gradient reaches the cond frame's prediction
    present = seen["present"].repeat_interleave(F, dim=1)  # [W, 2F]
    per_frame = grad[:, :, 1:].abs().sum(dim=(1, 3, 4))
    assert bool((per_frame[present] > 0).all()) and not bool(per_frame[~present].any())
    # K = 2 chunks: 3 windows per clip (phases 0, 1, 2), the cond frame at k = 0.055.
    sig = seen["sigmas"]
    assert sig.shape == (3 * B, 1 + 2 * F)
    assert torch.allclose(sig[:, 0], torch.full((3 * B,), 0.055))
    assert (
        seen["present"].tolist() == [[False, True]] * B + [[True, True]] * B + [[True, False]] * B
    )
    both = sig[B : 2 * B]  # phase 1: earlier half a schedule below the later (shift 1)
    assert torch.allclose(both[:, 1], both[:, 1 + F] - 0.5)
    assert bool((both[:, 1 + F] > 0.5).all())


def test_loss_and_grads_match_with_gradient_checkpointing(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(2)
    plain = dec.loss(x["cond"], x["target"], x["text"], x["state"], _gen())
    plain.backward()
    grads: dict[str, torch.Tensor] = {}
    for name, param in dec.trainable_parameters().items():
        assert param.grad is not None, name
        grads[name] = param.grad.clone()
    dec.zero_grad()
    dec.transformer.enable_gradient_checkpointing()
    ckpt = dec.loss(x["cond"], x["target"], x["text"], x["state"], _gen())
    ckpt.backward()
    assert torch.equal(ckpt, plain)
    for name, param in dec.trainable_parameters().items():
        assert param.grad is not None and torch.allclose(param.grad, grads[name], atol=1e-6), name


def test_bad_shapes_are_refused(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    x = _inputs(2)
    with pytest.raises(ContractError, match="target"):
        dec.loss(x["cond"], x["target"][:, :, :-1], x["text"], None, _gen())
    with pytest.raises(ContractError, match="sigmas"):
        dec(x["latents"], x["sigmas"][:, :-1], x["text"])
    with pytest.raises(ConfigError, match="even"):
        dec.rollout(x["cond"], x["text"], steps=3)


# --------------------------------------------------------------------------- VAE, text, config


def test_encode_video_maps_frames_to_latent_frames(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    frames = torch.rand(1, 9, 3, 16, 16, generator=_gen()) * 2 - 1
    latents = dec.encode_video(frames)
    assert latents.shape == (1, C, 3, H, H)  # 1 + 4m frames -> 1 + m latent frames
    # Independent normalisation from the VAE config's statistics.
    z = dec.vae.encode(frames.permute(0, 2, 1, 3, 4)).latent_dist.mode()
    mean = torch.tensor(TINY_VAE["latents_mean"]).view(1, -1, 1, 1, 1)
    std = torch.tensor(TINY_VAE["latents_std"]).view(1, -1, 1, 1, 1)
    assert torch.allclose(latents, (z - mean) / std, atol=1e-6)
    # Latent frame 0 is video frame 0 alone (Wan's causal VAE).
    assert torch.allclose(dec.encode_video(frames[:, :1]), latents[:, :, :1], atol=1e-5)
    assert dec.decode_latents(latents).shape == (1, 9, 3, 16, 16)
    with pytest.raises(ContractError, match="1 \\+ 4m"):
        dec.encode_video(frames[:, :8])


def test_encode_text_zero_pads_like_wan(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    emb, mask = dec.encode_text(["move left", "up"])
    assert emb.shape == (2, L, 16) and mask.shape == (2, L)
    assert mask.sum(1).tolist() == [L, 2]  # "move left" fills (truncated), "up" is 2 bytes
    assert not bool(emb[1, 2:].any()) and bool(emb[1, :2].any())
    with pytest.raises(ContractError, match="strings"):
        dec.encode_text("up")


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="even"):
        tiny_decoder_config(sample_steps=5).validate()
    with pytest.raises(ConfigError, match="both"):
        tiny_decoder_config(pretrained_path="/nowhere").validate()
    with pytest.raises(ConfigError, match="neither"):
        tiny_decoder_config(vae_config={}).validate()
    with pytest.raises(ConfigError, match="rollout"):
        tiny_decoder_config(rollout="bidirectional").validate()
    with pytest.raises(ConfigError, match="tokenizer"):
        OWDecoder(tiny_decoder_config())


def test_config_builds_from_dict() -> None:
    from reference_model.config import from_dict

    data = {"transformer_config": TINY_TRANSFORMER, "state_dim": 6, "rollout": "chunk"}
    cfg = from_dict(OWDecoderConfig, data, "test")
    assert cfg.transformer_config == TINY_TRANSFORMER and cfg.rollout == "chunk"
    with pytest.raises(ConfigError, match="sample_step"):
        from_dict(OWDecoderConfig, {"sample_step": 4}, "test")


# --------------------------------------------------------------------------- save and load


def test_real_layout_folder_loads_offline(wan_folder: Path) -> None:
    dec = _decoder(wan_folder)
    assert isinstance(dec.tokenizer, type(AutoTokenizer.from_pretrained(wan_folder / "tokenizer")))
    direct = UMT5EncoderModel.from_pretrained(wan_folder / "text_encoder")
    ids = dec.tokenizer(["up"], padding="max_length", max_length=L, return_tensors="pt")
    with torch.no_grad():
        expected = direct(**ids).last_hidden_state[0, :2]
    assert torch.allclose(dec.encode_text(["up"])[0][0, :2], expected)


def test_state_stream_round_trip(wan_folder: Path, tmp_path: Path) -> None:
    dec = _decoder(wan_folder, train_scope="state")
    x = _inputs(2)
    opt = torch.optim.SGD(list(dec.trainable_parameters().values()), lr=0.1)
    dec.loss(x["cond"], x["target"], x["text"], x["state"], _gen()).backward()
    opt.step()
    out = dec.save_pretrained(tmp_path / "dec")
    assert json.loads((out / "transformer" / STATE_STREAM_FILE).read_text())["state_dim"] == 6
    again = _decoder(out)
    args = (x["latents"][:, :, : 1 + 2 * F], x["sigmas"][:, : 1 + 2 * F], x["text"])
    with torch.no_grad():
        assert torch.equal(again(*args, x["state"]), dec(*args, x["state"]))
        # The folder is still a plain diffusers Wan folder (state weights ignored on load); the
        # pretrained weights were not trained, so it equals the original transformer.
        plain = WanTransformer3DModel.from_pretrained(out / "transformer", local_files_only=True)
        reference = _pristine(wan_folder)
        lat, sig = args[0][:, :, :F], args[1][:, :F]
        ts = (sig * 1000).repeat_interleave(4, dim=1)
        assert torch.equal(
            plain(lat, ts, x["text"][:, 0]).sample, reference(lat, ts, x["text"][:, 0]).sample
        )
    with pytest.raises(ConfigError, match="state_dim 6"):
        _decoder(out, state_dim=5)
