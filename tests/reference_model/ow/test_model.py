"""PanOWModel: one step of each stage, the rollout, checkpoints (base weights by path, bad shapes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from panbench.errors import ConfigError
from reference_model.ow.model import PanOWModel
from tests.reference_model.ow.ow_helpers import tiny_model


def window_batch(model: PanOWModel, seed: int = 0) -> dict[str, Any]:
    """A batch of 2 windows of 2 chunks as the cache returns it (random frames, real encoders)."""
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(2, 9, 3, 32, 32, generator=g) * 2 - 1
    texts = [["move the red circle up", "move the blue square left"], ["wait", "push"]]
    emb, _ = model.encode_text([t for row in texts for t in row])
    frames = ((video[:, [0, 4]] + 1) * 127.5).round().to(torch.uint8).permute(0, 1, 3, 4, 2)
    return {
        "latents": model.encode_video(video),
        "text": emb.unflatten(0, (2, 2)),
        "frames": frames,
        "texts": texts,
    }


def one_step(model: PanOWModel, stage: int) -> tuple[dict[str, torch.Tensor], float]:
    names = model.set_stage(stage)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW([params[n] for n in names], lr=1e-2)
    model.train()
    loss = model(stage, window_batch(model), torch.Generator().manual_seed(1))["loss"]
    loss.backward()
    opt.step()
    return before, float(loss.detach())


def changed(model: PanOWModel, before: dict[str, torch.Tensor]) -> set[str]:
    now = model.state_dict()
    return {k for k in before if not torch.equal(before[k], now[k])}


def test_stage1_trains_the_decoder_only_with_the_state_stream_idle() -> None:
    model = tiny_model()
    before, loss = one_step(model, 1)
    assert torch.isfinite(torch.tensor(loss))
    moved = changed(model, before)
    assert any(k.startswith("decoder.transformer.blocks") for k in moved)
    # Stage 1 passes no state: the backbone, the state stream, the VAE and umT5 stay bit-identical.
    assert not any(k.startswith("backbone.") for k in moved)
    assert not any(".state_attn." in k or "state_embedder" in k for k in moved)
    assert not any(k.startswith(("decoder.vae.", "decoder.text_encoder.")) for k in moved)


def test_stage2_trains_backbone_and_state_stream_with_encoders_frozen() -> None:
    model = tiny_model()
    before, loss = one_step(model, 2)
    assert torch.isfinite(torch.tensor(loss))
    moved = changed(model, before)
    for prefix in ("backbone.queries", "backbone.proj.", "backbone.patch_embed.", "backbone.llm."):
        assert any(k.startswith(prefix) for k in moved), prefix
    assert any(".state_attn." in k for k in moved)
    assert not any(k.startswith(("decoder.vae.", "decoder.text_encoder.")) for k in moved)


def test_stage2_with_a_frozen_llm_keeps_it_bit_identical() -> None:
    model = tiny_model(tune="frozen")
    before, _ = one_step(model, 2)
    moved = changed(model, before)
    assert not any(k.startswith("backbone.llm.") for k in moved)
    assert any(k.startswith("backbone.queries") for k in moved)


def test_rollout_three_chunks_both_modes_and_seeded() -> None:
    model = tiny_model()
    ctx = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    acts = ["move up", "move left", "push"]
    out = model.rollout(ctx, ["wait"], acts, torch.Generator().manual_seed(3))
    assert out.shape == (12, 32, 32, 3) and out.dtype == torch.uint8
    again = model.rollout(ctx, ["wait"], acts, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    chunk = model.rollout(ctx, ["wait"], acts, torch.Generator().manual_seed(3), mode="chunk")
    assert chunk.shape == out.shape and not torch.equal(chunk, out)


def test_later_actions_never_change_earlier_chunks() -> None:
    model = tiny_model()
    ctx = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    a = model.rollout(ctx, [], ["up", "left", "down"], torch.Generator().manual_seed(0))
    b = model.rollout(ctx, [], ["up", "right", "push"], torch.Generator().manual_seed(0))
    assert torch.equal(a[:4], b[:4]) and not torch.equal(a[4:], b[4:])


def test_save_load_gives_identical_outputs(tmp_path: Path) -> None:
    model = tiny_model(seed=4)
    model.save_pretrained(tmp_path / "m", training={"step": 3})
    loaded = PanOWModel.from_pretrained(tmp_path / "m")
    batch = window_batch(model)
    with torch.no_grad():
        a = model(2, batch, torch.Generator().manual_seed(2))["loss"]
        b = loaded(2, batch, torch.Generator().manual_seed(2))["loss"]
    assert torch.equal(a, b)
    ctx = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    ra = model.rollout(ctx, [], ["up", "left"], torch.Generator().manual_seed(1))
    rb = loaded.rollout(ctx, [], ["up", "left"], torch.Generator().manual_seed(1))
    assert torch.equal(ra, rb)


def test_wrong_shape_checkpoint_names_key_and_shapes(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    file = tmp_path / "m" / "model.safetensors"
    tensors = load_file(str(file))
    tensors["backbone.proj.weight"] = torch.zeros(9, 32)
    save_file(tensors, str(file))
    with pytest.raises(ConfigError, match=r"backbone.proj.weight has shape \[9, 32\].*\[8, 32\]"):
        PanOWModel.from_pretrained(tmp_path / "m")


def test_frozen_base_weights_are_referenced_not_saved(tmp_path: Path) -> None:
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    from reference_model.ow.tokenizers import offline_tokenizer

    base = tiny_model()
    # A local "pretrained" LLM and Wan folder, as real runs have them.
    llm_cfg = {k: v for k, v in base.config.backbone.llm_config.items() if k != "model_type"}
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen2", **llm_cfg))
    lm.save_pretrained(tmp_path / "llm")
    offline_tokenizer().save_pretrained(tmp_path / "llm")
    base.decoder.save_pretrained(tmp_path / "wan")
    cfg = base.config
    cfg = dataclasses.replace(
        cfg,
        backbone=dataclasses.replace(
            cfg.backbone, llm_path=str(tmp_path / "llm"), llm_config={}, tune="frozen"
        ),
        decoder=dataclasses.replace(
            cfg.decoder,
            pretrained_path=str(tmp_path / "wan"),
            transformer_config={},
            vae_config={},
            text_encoder_config={},
            train_scope="state",
        ),
    )
    model = PanOWModel(cfg)
    model.save_pretrained(tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys and not any(k.startswith(("backbone.llm.", "decoder.vae.")) for k in keys)
    assert not any(k.startswith("decoder.text_encoder.") for k in keys)
    decoder_keys = {k for k in keys if k.startswith("decoder.")}
    assert decoder_keys and all(".state_attn." in k or "state_embedder" in k for k in decoder_keys)
    loaded = PanOWModel.from_pretrained(tmp_path / "m")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
