"""Tests of OWBackbone on tiny random Qwen2 / Qwen2.5-VL configs (CPU, offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from panbench.errors import ConfigError, ContractError
from reference_model.config import from_dict
from reference_model.ow.backbone import OWBackbone, OWBackboneConfig, vision_tower_inputs
from reference_model.ow.tokenizers import offline_tokenizer

HIDDEN = 32
_SPECIAL_IDS = {"bos_token_id": 1, "eos_token_id": 1, "pad_token_id": 0}
TINY_QWEN2: dict[str, Any] = {
    "model_type": "qwen2",
    "vocab_size": 300,
    "hidden_size": HIDDEN,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 64,
    **_SPECIAL_IDS,
}
TINY_QWEN2_5_VL: dict[str, Any] = {
    "model_type": "qwen2_5_vl",
    "text_config": {
        **{k: v for k, v in TINY_QWEN2.items() if k != "model_type"},
        # M-RoPE sections sum to head_dim / 2 = 8.
        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1e4},
    },
    "vision_config": {
        "depth": 2,
        "hidden_size": 16,
        "num_heads": 2,
        "intermediate_size": 32,
        "out_hidden_size": HIDDEN,
        "patch_size": 4,
        "window_size": 16,
        "fullatt_block_indexes": [1],
    },
}
ACTIONS = [["left", "up", "move right", "down"], ["stay", "push the red block", "up", "x"]]


def tiny_config(**overrides: Any) -> OWBackboneConfig:
    """A tiny Qwen2 backbone: 4 queries of width 8, 16 px frames in 2x2 patches (4 tokens)."""
    values: dict[str, Any] = {
        "llm_config": TINY_QWEN2,
        "num_queries": 4,
        "state_dim": 8,
        "history": 10,
        "max_action_tokens": 8,
        "image_size": 16,
        "patch_size": 8,
        "lora_r": 2,
    }
    values.update(overrides)
    return OWBackboneConfig(**values)


def build(seed: int = 0, **overrides: Any) -> OWBackbone:
    torch.manual_seed(seed)
    return OWBackbone(tiny_config(**overrides), tokenizer=offline_tokenizer(["left", "up"]))


def obs_for(model: OWBackbone, bsz: int = 2, rounds: int = 4, seed: int = 1) -> torch.Tensor:
    """State tokens [B, R, N_obs, hidden] of random frames through the model's encoder h."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(bsz * rounds, 3, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        tokens = model.encode_observation(frames)
    return tokens.view(bsz, rounds, *tokens.shape[1:])


def with_action(actions: list[list[str]], r: int, text: str) -> list[list[str]]:
    return [[text if i == r else a for i, a in enumerate(row)] for row in actions]


# ------------------------------------------------------------------------------ template, causality
def test_output_shapes_and_template_markers() -> None:
    model = build()
    obs = obs_for(model)
    assert obs.shape == (2, 4, 4, HIDDEN)
    out = model(obs, ACTIONS)
    assert out.shape == (2, 4, 4, 8) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    tok = model.tokenizer
    start, end = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert model._markers["user"] == tok.encode("<|im_start|>user\n")
    assert model._markers["user"][0] == start and model._markers["end"][0] == end
    assert model._markers["assistant"] == tok.encode("<|im_end|>\n<|im_start|>assistant\n")


def test_later_rounds_never_change_earlier_predictions_exactly() -> None:
    model = build().eval()
    obs = obs_for(model)
    with torch.no_grad():
        base = model(obs, ACTIONS)
        changed_action = model(obs, with_action(ACTIONS, 1, "a different action"))
        obs2 = obs.clone()
        obs2[:, 2] += 1.0
        changed_state = model(obs2, ACTIONS)
        changed_first = model(obs, with_action(ACTIONS, 0, "down"))
    assert torch.equal(changed_action[:, 0], base[:, 0])
    assert not torch.allclose(changed_action[:, 1], base[:, 1])
    assert torch.equal(changed_state[:, :2], base[:, :2])
    assert not torch.allclose(changed_state[:, 2], base[:, 2])
    # Round 1's action reaches every later round.
    for r in range(4):
        assert not torch.allclose(changed_first[:, r], base[:, r])


def test_action_padding_and_batch_mates_do_not_change_a_prediction() -> None:
    model = build().eval()
    obs = obs_for(model)
    short = [["left", "up", "go", "down"], ["stay", "jump up", "up", "x"]]  # at most 8 tokens
    with torch.no_grad():
        both = model(obs, short)
        alone = model(obs[1:], short[1:])
        # Longer action slots only add masked padding.
        wider = build(max_action_tokens=20).eval()(obs, short)
    torch.testing.assert_close(alone[0], both[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(wider, both, rtol=0, atol=1e-6)


def test_actions_are_cut_to_max_action_tokens() -> None:
    model = build().eval()
    obs = obs_for(model, bsz=1, rounds=1)
    with torch.no_grad():
        cut = model(obs, [["abcdefgh"]])  # exactly 8 byte tokens
        longer = model(obs, [["abcdefghijk"]])
        shorter = model(obs, [["abcdefg"]])
    assert torch.equal(cut, longer)
    assert not torch.allclose(cut, shorter)


def test_hidden_outputs_are_the_projection_inputs_and_can_be_fed_back() -> None:
    model = build(num_queries=4).eval()  # N_obs = 4 = num_queries
    obs = obs_for(model)
    with torch.no_grad():
        hidden = model(obs, ACTIONS, return_hidden=True)
        assert hidden.shape == (2, 4, 4, HIDDEN)
        torch.testing.assert_close(model.proj(hidden), model(obs, ACTIONS), rtol=0, atol=1e-6)
        last = model.predict(obs, ACTIONS, return_hidden=True)
        torch.testing.assert_close(last, hidden[:, -1], rtol=0, atol=1e-6)
        # A predicted state is a valid state token set for the next round.
        fed = torch.cat([obs, last[:, None]], dim=1)
        assert model(fed, [[*row, "up"] for row in ACTIONS]).shape == (2, 5, 4, 8)


# ------------------------------------------------------------------------------------ history cap
def test_history_cap_uses_exactly_the_last_rounds() -> None:
    model = build(history=2).eval()
    obs = obs_for(model, rounds=5)
    actions = [[*row, "up"] for row in ACTIONS]
    with torch.no_grad():
        out = model(obs, actions)
        assert out.shape[:2] == (2, 5)
        for r in range(5):
            lo = max(0, r - 1)
            alone = model.predict(obs[:, lo : r + 1], [row[lo : r + 1] for row in actions])
            torch.testing.assert_close(out[:, r], alone, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.predict(obs, actions), out[:, -1], rtol=0, atol=1e-6)
        changed = model(obs, with_action(actions, 0, "down"))
    # Round 0 is inside round 1's window and outside every later one.
    assert not torch.allclose(changed[:, 1], out[:, 1])
    assert torch.equal(changed[:, 2:], out[:, 2:])


def test_history_at_least_rounds_is_one_window() -> None:
    capped, uncapped = build(history=4).eval(), build(history=10).eval()
    obs = obs_for(capped)
    with torch.no_grad():
        assert torch.equal(capped(obs, ACTIONS), uncapped(obs, ACTIONS))
        assert torch.equal(capped.predict(obs, ACTIONS), capped(obs, ACTIONS)[:, -1])


# ---------------------------------------------------------------------------------- tune modes
def _snapshot(model: OWBackbone) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _train_steps(model: OWBackbone, steps: int = 2) -> None:
    opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-2, weight_decay=0.0)
    frames = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    for _ in range(steps):
        obs = model.encode_observation(frames).view(2, 4, -1, HIDDEN)
        loss = model(obs, ACTIONS).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("tune", ["frozen", "lora", "full"])
def test_tune_modes_train_exactly_their_parameters(tune: str) -> None:
    model = build(tune=tune)
    names = set(model.trainable_parameters())
    own = {n for n in names if not n.startswith("llm.")}
    assert own == {n for n, _ in model.named_parameters() if not n.startswith("llm.")}
    assert {"queries", "proj.weight", "proj.bias"} <= own
    assert any(n.startswith("patch_embed.") for n in own)
    llm_names = {n for n, _ in model.named_parameters() if n.startswith("llm.")}
    if tune == "frozen":
        assert not names & llm_names
    elif tune == "lora":
        assert names & llm_names == {n for n in llm_names if ".lora_" in n}
        targets = {"q_proj", "k_proj", "v_proj", "o_proj"}
        adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names & llm_names}
        assert adapted == targets
    else:
        assert llm_names <= names
    before = _snapshot(model)
    _train_steps(model)
    for name, param in model.named_parameters():
        same = torch.equal(param, before[name])
        assert same == (name not in names), name


def test_trainable_set_is_fixed_by_tune_not_by_later_freezing(tmp_path: Path) -> None:
    _write_tiny_qwen2(tmp_path)
    torch.manual_seed(0)
    model = OWBackbone(tiny_config(llm_config={}, llm_path=str(tmp_path), tune="lora"))
    names, keys = set(model.trainable_parameters()), set(model.checkpoint_state_dict())
    model.requires_grad_(False)  # e.g. a decoder-only stage freezing the backbone
    assert set(model.trainable_parameters()) == names
    assert set(model.checkpoint_state_dict()) == keys


def test_lora_starts_as_the_frozen_model() -> None:
    frozen, lora = build(tune="frozen").eval(), build(tune="lora").eval()
    obs = obs_for(frozen)
    with torch.no_grad():
        torch.testing.assert_close(lora(obs, ACTIONS), frozen(obs, ACTIONS), rtol=0, atol=1e-6)


def test_gradient_reaches_queries_and_patch_embedding() -> None:
    model = build(tune="frozen")
    frames = torch.rand(8, 3, 16, 16) * 2 - 1
    model(model.encode_observation(frames).view(2, 4, -1, HIDDEN), ACTIONS).sum().backward()
    for name in ("queries", "patch_embed.conv.weight", "patch_embed.pos"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("llm."))


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    grads = []
    for checkpointing in (False, True):
        model = build(tune="lora").train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert any(getattr(m, "gradient_checkpointing", False) for m in model.llm.modules())
        obs = obs_for(model)
        model(obs, ACTIONS).square().sum().backward()
        grads.append({n: p.grad for n, p in model.trainable_parameters().items()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------ local folders, saving
def _write_tiny_qwen2(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(5)
    kwargs = {k: v for k, v in TINY_QWEN2.items() if k != "model_type"}
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model("qwen2", **kwargs))
    lm.save_pretrained(folder)
    offline_tokenizer(["left"]).save_pretrained(folder)
    return {k: v.clone() for k, v in lm.model.state_dict().items()}


def test_loads_a_local_folder_offline(tmp_path: Path) -> None:
    saved = _write_tiny_qwen2(tmp_path)
    model = OWBackbone(tiny_config(llm_config={}, llm_path=str(tmp_path), tune="frozen"))
    loaded = model.llm.state_dict()
    assert set(loaded) == set(saved)
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key
    assert not hasattr(model.llm, "lm_head")
    # The folder's tokenizer is used: "left" is one token there.
    assert len(model.tokenizer.encode("left")) == 1
    assert model(obs_for(model), ACTIONS).shape == (2, 4, 4, 8)


def test_lora_checkpoint_holds_only_trained_weights_and_reloads(tmp_path: Path) -> None:
    _write_tiny_qwen2(tmp_path)
    cfg = tiny_config(llm_config={}, llm_path=str(tmp_path), tune="lora")
    torch.manual_seed(0)
    model = OWBackbone(cfg)
    _train_steps(model)
    state = {k: v.clone() for k, v in model.checkpoint_state_dict().items()}
    assert set(state) == set(model.trainable_parameters())
    assert not any(k.startswith("llm.") and ".lora_" not in k for k in state)
    torch.manual_seed(123)  # a different init of everything the checkpoint must restore
    again = OWBackbone(cfg)
    again.load_checkpoint_state_dict(state)
    model.eval(), again.eval()
    obs = obs_for(model)
    with torch.no_grad():
        assert torch.equal(again(obs, ACTIONS), model(obs, ACTIONS))
    with pytest.raises(ContractError, match="missing"):
        again.load_checkpoint_state_dict({k: v for k, v in state.items() if k != "queries"})
    with pytest.raises(ContractError, match="unexpected"):
        again.load_checkpoint_state_dict({**state, "llm.norm.weight": torch.ones(HIDDEN)})


def test_random_base_is_saved_with_the_checkpoint() -> None:
    model = build(tune="lora")
    state = model.checkpoint_state_dict()
    assert set(state) == set(model.state_dict())
    again = build(seed=9, tune="lora")
    again.load_checkpoint_state_dict(state)
    obs = obs_for(model)
    with torch.no_grad():
        assert torch.equal(again.eval()(obs, ACTIONS), model.eval()(obs, ACTIONS))


def test_config_reads_strictly_from_a_dict() -> None:
    data = {"llm_config": TINY_QWEN2, "tune": "lora", "lora_target_modules": "q_proj,v_proj"}
    cfg = from_dict(OWBackboneConfig, data, "test.yaml", "model.backbone")
    assert cfg.llm_config == TINY_QWEN2 and cfg.tune == "lora"
    with pytest.raises(ConfigError, match="unknown key 'histroy'"):
        from_dict(OWBackboneConfig, {"histroy": 3}, "test.yaml")


# --------------------------------------------------------------------------- VL vision tower
def vl_model(**overrides: Any) -> OWBackbone:
    values: dict[str, Any] = {"llm_config": TINY_QWEN2_5_VL, "use_vision_tower": True}
    return build(**{**values, **overrides})


def test_vision_tower_inputs_match_the_image_processor() -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    proc = Qwen2VLImageProcessorPil(
        patch_size=4, merge_size=2, temporal_patch_size=2, do_resize=False, do_rescale=False
    )
    images = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    ref = proc(
        images=[im.numpy() for im in images],
        return_tensors="pt",
        input_data_format="channels_first",
    )
    pixels, grid = vision_tower_inputs(images * 2 - 1, 4, 2, 2)
    assert grid.tolist() == ref["image_grid_thw"].tolist() == [[1, 4, 6], [1, 4, 6]]
    torch.testing.assert_close(pixels, ref["pixel_values"], rtol=0, atol=1e-6)


def test_vision_tower_encodes_frames_to_llm_width_tokens() -> None:
    model = vl_model().eval()
    assert model.patch_embed is None and model.vision is not None
    assert model.num_obs_tokens == (16 // 8) ** 2
    frames = torch.rand(3, 3, 20, 12) * 2 - 1  # resized to 16x16
    with torch.no_grad():
        tokens = model.encode_observation(frames)
        assert tokens.shape == (3, 4, HIDDEN)
        # Each frame is encoded on its own: batching never mixes frames.
        single = model.encode_observation(frames[1:2])
        torch.testing.assert_close(single[0], tokens[1], rtol=0, atol=1e-5)
        out = model(tokens[None, :2].expand(2, -1, -1, -1), [a[:2] for a in ACTIONS])
    assert out.shape == (2, 2, 4, 8)


@pytest.mark.parametrize("tune", ["lora", "full"])
def test_vision_tower_trains_only_under_full(tune: str) -> None:
    model = vl_model(tune=tune, lora_target_modules="all-linear")
    names = set(model.trainable_parameters())
    tower = {n for n, _ in model.named_parameters() if n.startswith("vision.")}
    assert tower and (tower <= names if tune == "full" else not tower & names)
    assert not any(".lora_" in n for n in tower)
    before = _snapshot(model)
    _train_steps(model)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]) == (name not in names), name


def test_loads_a_local_vl_folder(tmp_path: Path) -> None:
    source = vl_model()
    from transformers import AutoConfig, AutoModelForImageTextToText

    torch.manual_seed(2)
    kwargs = {k: v for k, v in TINY_QWEN2_5_VL.items() if k != "model_type"}
    vl = AutoModelForImageTextToText.from_config(AutoConfig.for_model("qwen2_5_vl", **kwargs))
    vl.save_pretrained(tmp_path)
    offline_tokenizer().save_pretrained(tmp_path)
    model = OWBackbone(tiny_config(llm_config={}, llm_path=str(tmp_path), use_vision_tower=True))
    assert model.vision is not None and source.vision is not None
    for key, value in vl.model.visual.state_dict().items():
        assert torch.equal(model.vision.state_dict()[key], value), key
    for key, value in vl.model.language_model.state_dict().items():
        assert torch.equal(model.llm.state_dict()[key], value), key


# ------------------------------------------------------------------------------------ bad input
def test_round_count_mismatch_names_both_counts() -> None:
    model = build()
    obs = obs_for(model, rounds=4)
    with pytest.raises(ContractError, match=r"expected 4 action texts for sample 0.*got 3 items"):
        model(obs, [a[:3] for a in ACTIONS])
    with pytest.raises(ContractError, match=r"expected actions for B = 2 samples, but got 1"):
        model(obs, ACTIONS[:1])
    with pytest.raises(
        ContractError, match=r"expected obs_tokens \[B, R, N_obs, 32\].*\(2, 4, 4\)"
    ):
        model(obs[..., 0], ACTIONS)
    with pytest.raises(ContractError, match=r"expected frames \[B, 3, H, W\]"):
        model.encode_observation(torch.zeros(2, 1, 16, 16))


def test_missing_llm_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match=r"local transformers model folder.*no-such-model"):
        OWBackbone(tiny_config(llm_config={}, llm_path=str(missing)))
    with pytest.raises(ConfigError, match=r"no config\.json"):
        OWBackbone(tiny_config(llm_config={}, llm_path=str(tmp_path)))


def test_non_causal_lm_is_refused() -> None:
    t5 = {"model_type": "t5", "vocab_size": 300, "d_model": 16, "num_layers": 1, "num_heads": 2}
    with pytest.raises(ConfigError, match=r"expected a causal language model.*got model_type 't5'"):
        build(llm_config=t5)
    with pytest.raises(ConfigError, match=r"vision tower.*got model_type 'qwen2'"):
        build(use_vision_tower=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"llm_config": {}}, "exactly one of llm_path and llm_config"),
        ({"llm_path": "x"}, "exactly one of llm_path and llm_config"),
        ({"llm_config": {"hidden_size": 4}}, "model_type"),
        ({"tune": "partial"}, "expected tune in"),
        ({"llm_dtype": "fp8"}, "expected llm_dtype"),
        ({"num_queries": 0}, "num_queries >= 1"),
        ({"image_size": 20}, "multiple of patch_size 8"),
        ({"tune": "lora", "lora_target_modules": "no_such_proj"}, "lora_target_modules"),
    ],
)
def test_bad_config_values_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_tokenizer_must_fit_and_have_chat_markers() -> None:
    small = {**TINY_QWEN2, "vocab_size": 100}
    with pytest.raises(ConfigError, match=r"at most the LLM's 100 embeddings, but got 262"):
        build(llm_config=small)
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    plain = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    torch.manual_seed(0)
    with pytest.raises(ConfigError, match=r"chat marker <\|im_start\|> as one token"):
        OWBackbone(tiny_config(), tokenizer=plain)


@pytest.mark.parametrize("extra", [{}, {"llm_config": TINY_QWEN2_5_VL, "use_vision_tower": True}])
def test_bfloat16_llm_keeps_float32_trainables_and_outputs(extra: dict[str, Any]) -> None:
    model = build(llm_dtype="bfloat16", tune="lora", **extra)
    assert model.llm.get_input_embeddings().weight.dtype == torch.bfloat16
    for name, param in model.trainable_parameters().items():
        assert param.dtype == torch.float32, name
    frames = torch.rand(8, 3, 16, 16) * 2 - 1
    out = model(model.encode_observation(frames).view(2, 4, -1, HIDDEN), ACTIONS)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert model.queries.grad is not None and torch.isfinite(model.queries.grad).all()
