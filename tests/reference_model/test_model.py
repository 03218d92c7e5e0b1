"""PanModel: shapes, a recorded output slice, gradient paths, checkpoints and their errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from panbench.errors import ConfigError, DataError
from reference_model.backbone import patchify, unpatchify
from reference_model.config import CONFIG_DIR, load_run_config
from reference_model.model import PanModel
from reference_model.tokenizer import ByteTokenizer
from reference_model.train import _H_DECODER
from tests.reference_model.helpers import tiny_config, tiny_model

ACTIONS = [["move the red circle up", "move the blue square left"]] * 2


def _frames(seed: int, b: int = 2, t: int = 3) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (b, t, 32, 32, 3), dtype=np.uint8))


def _gens(n: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(i) for i in range(n)]


def test_shapes_through_h_f_g() -> None:
    model = tiny_model()
    assert model.num_parameters()["total"] < 100_000
    frames = _frames(0)
    z = model.encode_frames(frames)
    assert z.shape == (2, 3, 4, 16, 16) and z.dtype == torch.float32
    ids = model.encode_actions(ACTIONS)
    assert ids.shape == (2, 2, 32)
    states = model.backbone(z[:, :2], ids)
    assert states.shape == (2, 2, 16, 16)  # 16 state tokens of width 16
    nxt = model.predict_next(z[:, :2], ids, _gens(2))
    assert nxt.shape == (2, 4, 16, 16)
    out = model.decode_latents(nxt)
    assert out.shape == (2, 32, 32, 3) and out.dtype == torch.uint8


def test_recorded_output_slice() -> None:
    """Seeded weights and noise give these numbers (recorded once; guards silent changes)."""
    model = tiny_model(seed=0)
    z = model.encode_frames(_frames(1))
    nxt = model.predict_next(z[:, :2], model.encode_actions(ACTIONS), _gens(2))
    got = nxt[0, 0, 0, :4].tolist()
    expected = RECORDED_SLICE
    np.testing.assert_allclose(got, expected, atol=1e-4)


RECORDED_SLICE = [-0.1891385, -0.1083244, 0.0153490, -0.1211637]


def test_patchify_roundtrip_and_layout() -> None:
    z = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    tokens = patchify(z, 4)
    assert tokens.shape == (2, 4, 3 * 16)
    # token 1 is the top-right 4x4 patch: channel 0 holds rows 0..3, columns 4..7
    assert torch.equal(tokens[0, 1, :16], z[0, 0, :4, 4:].reshape(-1))
    assert torch.equal(unpatchify(tokens, 4, 3), z)


def test_byte_tokenizer() -> None:
    tok = ByteTokenizer(8)
    ids = tok.encode(["up", "déplacer"])
    assert ids[0].tolist() == [117, 112] + [256] * 6
    assert tok.decode(ids)[0] == "up"
    assert tok.decode(tok.encode(["move"]))[0] == "move"


def test_actions_change_the_prediction() -> None:
    model = tiny_model()
    z = model.encode_frames(_frames(2))[:, :2]
    a = model.predict_next(z, model.encode_actions(ACTIONS), _gens(2))
    other = [["move the red circle up", "move the blue square right"]] * 2
    b = model.predict_next(z, model.encode_actions(other), _gens(2))
    assert not torch.allclose(a, b)
    again = model.predict_next(z, model.encode_actions(ACTIONS), _gens(2))
    assert torch.equal(a, again)


def _backbone_grad(model: PanModel, which: str) -> float:
    model.train()
    model.zero_grad()
    ids = model.encode_actions(ACTIONS)
    losses = model.dynamics_loss(_frames(3), ids, torch.Generator().manual_seed(0))
    losses[which].backward()
    return sum(
        float(p.grad.abs().sum())
        for p in model.backbone.transformer.parameters()
        if p.grad is not None
    )


def test_generative_objective_trains_f_through_g() -> None:
    model = tiny_model(objective="generative")
    assert _backbone_grad(model, "diffusion") > 0
    fresh = PanModel(tiny_config("generative"))  # zero-initialised state projection
    assert _backbone_grad(fresh, "diffusion") == 0.0  # PAN's state stream starts closed


def test_latent_objective_detaches_g_from_f() -> None:
    model = tiny_model(objective="latent")
    assert _backbone_grad(model, "diffusion") == 0.0
    assert _backbone_grad(model, "latent") > 0


def test_collapse_probe_is_the_batch_variance_of_states() -> None:
    model = tiny_model()
    frames, ids = _frames(4, b=3), model.encode_actions(ACTIONS + ACTIONS[:1])
    losses = model.dynamics_loss(frames, ids, torch.Generator().manual_seed(0))
    with torch.no_grad():
        states = model.backbone(model.encode_frames(frames)[:, :-1], ids).flatten(0, 1).numpy()
    expected = states.astype(np.float64).var(axis=0, ddof=1).mean()
    assert float(losses["collapse"]) == pytest.approx(expected, rel=1e-4)


def _encoder_grads(model: PanModel, which: str, joint: bool) -> dict[str, float]:
    """Gradient mass per part of h (vae.encoder, vae.decoder) from one loss term."""
    model.train()
    model.zero_grad()
    for p in model.parameters():
        p.requires_grad_(True)
    ids = model.encode_actions(ACTIONS)
    losses = model.dynamics_loss(
        _frames(3), ids, torch.Generator().manual_seed(0), joint_encoder=joint
    )
    losses[which].backward()
    mass = {"vae.encoder": 0.0, "vae.decoder": 0.0}
    for name, p in model.encoder.named_parameters():
        part = ".".join(name.split(".")[:2])
        if part in mass and p.grad is not None:
            mass[part] += float(p.grad.abs().sum())
    return mass


def test_h_is_frozen_in_stage_two_unless_joint() -> None:
    model = tiny_model(objective="generative")
    assert _encoder_grads(model, "loss", joint=False) == {"vae.encoder": 0.0, "vae.decoder": 0.0}
    assert "recon" not in model.dynamics_loss(
        _frames(3), model.encode_actions(ACTIONS), torch.Generator().manual_seed(0)
    )


def test_joint_h_under_the_generative_objective_also_reconstructs() -> None:
    model = tiny_model(objective="generative")
    grads = _encoder_grads(model, "diffusion", joint=True)
    assert grads["vae.encoder"] > 0 and grads["vae.decoder"] == 0.0  # h's latents are targets
    recon = _encoder_grads(model, "recon", joint=True)
    assert recon["vae.encoder"] > 0 and recon["vae.decoder"] > 0
    frames = _frames(3)
    losses = model.dynamics_loss(
        frames, model.encode_actions(ACTIONS), torch.Generator().manual_seed(0), joint_encoder=True
    )
    from reference_model.encoder import frames_to_tensor

    expected = model.encoder.reconstruction_loss(frames_to_tensor(frames.flatten(0, 1)))["loss"]
    assert float(losses["recon"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    plain = model.dynamics_loss(
        frames, model.encode_actions(ACTIONS), torch.Generator().manual_seed(0)
    )
    total = float((plain["loss"] + expected).detach())
    assert float(losses["loss"].detach()) == pytest.approx(total, rel=1e-5)


def test_joint_h_under_the_latent_objective_learns_only_from_the_latent_l2() -> None:
    model = tiny_model(objective="latent")
    assert _encoder_grads(model, "diffusion", joint=True) == {
        "vae.encoder": 0.0,
        "vae.decoder": 0.0,
    }
    grads = _encoder_grads(model, "latent", joint=True)
    assert grads["vae.encoder"] > 0 and grads["vae.decoder"] == 0.0
    assert "recon" not in model.dynamics_loss(
        _frames(3),
        model.encode_actions(ACTIONS),
        torch.Generator().manual_seed(0),
        joint_encoder=True,
    )


def test_encoder_probe_is_the_batch_variance_of_h_latents() -> None:
    model = tiny_model()
    frames, ids = _frames(4, b=3), model.encode_actions(ACTIONS + ACTIONS[:1])
    losses = model.dynamics_loss(frames, ids, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode_frames(frames).flatten(0, 1).flatten(1).numpy()
    expected = z.astype(np.float64).var(axis=0, ddof=1).mean()
    assert float(losses["encoder_var"]) == pytest.approx(expected, rel=1e-4)


# ------------------------------------------------------------------------------- checkpoints
def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    model = tiny_model(seed=5)
    model.save_pretrained(tmp_path, training={"command": "panbench train --config x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["class_name"] == "PanModel" and doc["training"]["command"].startswith("panbench")
    loaded = PanModel.from_pretrained(tmp_path)
    assert dataclasses.asdict(loaded.config) == dataclasses.asdict(model.config)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    z = model.encode_frames(_frames(6))[:, :2]
    ids = model.encode_actions(ACTIONS)
    assert torch.equal(model.predict_next(z, ids, _gens(2)), loaded.predict_next(z, ids, _gens(2)))


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        PanModel.from_pretrained(tmp_path / "nope")
    tiny_model().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(DataError, match=r"no model\.safetensors"):
        PanModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(DataError, match=r"no config\.json"):
        PanModel.from_pretrained(tmp_path)


def test_unknown_config_keys_are_named(tmp_path: Path) -> None:
    tiny_model().save_pretrained(tmp_path)
    file = tmp_path / "config.json"
    doc = json.loads(file.read_text())
    doc["model"]["backbone"]["hiden_size"] = 8
    file.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"config\.json.*'hiden_size'.*model\.backbone") as err:
        PanModel.from_pretrained(tmp_path)
    assert "hidden_size" in str(err.value)  # the suggestion
    del doc["model"]["backbone"]["hiden_size"]
    doc["extra"] = 1
    file.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="unknown key 'extra'"):
        PanModel.from_pretrained(tmp_path)


def test_weights_that_do_not_match_the_config(tmp_path: Path) -> None:
    tiny_model().save_pretrained(tmp_path)
    file = tmp_path / "config.json"
    doc = json.loads(file.read_text())
    doc["model"]["backbone"]["hidden_size"] = 32
    doc["model"]["backbone"]["intermediate_size"] = 64
    file.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as err:
        PanModel.from_pretrained(tmp_path)
    msg = str(err.value)
    assert "model.safetensors does not match" in msg and "config.json" in msg
    assert "has shape [" in msg and "but the config builds" in msg


def test_corrupt_weights_file(tmp_path: Path) -> None:
    tiny_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"model\.safetensors: not a readable safetensors"):
        PanModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        PanModel.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------- run configs
@pytest.mark.parametrize("name", ["tiny", "tiny-stage2", "small", "base"])
def test_shipped_configs_load(name: str) -> None:
    run = load_run_config(CONFIG_DIR / f"{name}.yaml")
    assert run.model.objective == "generative"
    if name.startswith("tiny"):
        assert run.model.resolution == 32 and run.data.env == "shapes"
        assert PanModel(run.model).num_parameters()["total"] <= 3_000_000


@pytest.mark.parametrize("pair", [("generative", "latent"), ("generative-joint", "latent-joint")])
def test_ablation_pairs_differ_only_in_objective(pair: tuple[str, str]) -> None:
    gen, lat = (load_run_config(CONFIG_DIR / f"ablation-{name}.yaml").to_dict() for name in pair)
    assert gen["model"].pop("objective") == "generative"
    assert lat["model"].pop("objective") == "latent"
    assert gen == lat
    assert gen["train"]["joint_encoder"] is pair[0].endswith("joint")


def test_ablation_joint_runs_only_add_the_joint_encoder() -> None:
    for objective in ("generative", "latent"):
        frozen = load_run_config(CONFIG_DIR / f"ablation-{objective}.yaml").to_dict()
        joint = load_run_config(CONFIG_DIR / f"ablation-{objective}-joint.yaml").to_dict()
        assert joint["train"].pop("joint_encoder") is True
        assert frozen["train"].pop("joint_encoder") is False
        assert frozen == joint


@pytest.mark.parametrize(
    ("before", "after"),
    [("v2", "v3"), ("v3", "v4"), ("v4", "v5"), ("v4", "v6"), ("v9", "v10"), ("v12", "v13")],
)
def test_tiny_continuations_keep_the_model_and_the_domains(before: str, after: str) -> None:
    old = load_run_config(CONFIG_DIR / f"tiny-{before}.yaml")
    new = load_run_config(CONFIG_DIR / f"tiny-{after}.yaml")
    assert new.model == old.model
    assert new.train.init_from == f"reference_model/checkpoints/pan-tiny-{before}"
    assert new.train.ae_steps == 0 and new.data.effective_only
    key = [(s.env, sorted(s.env_kwargs.items()), s.resolution) for s in old.data.stream_configs()]
    assert key == [
        (s.env, sorted(s.env_kwargs.items()), s.resolution) for s in new.data.stream_configs()
    ]
    # Every domain keeps a stream with some weight, so none is left out of training.
    assert all(s.weight > 0 for s in new.data.stream_configs())


def test_tiny_v9_retrains_only_the_decoder_half_of_v4s_h() -> None:
    v4 = load_run_config(CONFIG_DIR / "tiny-v4.yaml")
    v9 = load_run_config(CONFIG_DIR / "tiny-v9.yaml")
    assert v9.model == v4.model and v9.data == v4.data
    assert v9.train.init_from == "reference_model/checkpoints/pan-tiny-v4"
    assert v9.train.ae_decoder_only and v9.train.ae_steps > 0 and v9.train.steps == 0


def test_tiny_v11_and_v12_split_v9_into_a_decoder_run_and_an_object_weighted_fg_run() -> None:
    v9 = load_run_config(CONFIG_DIR / "tiny-v9.yaml")
    v11 = load_run_config(CONFIG_DIR / "tiny-v11.yaml")
    v12 = load_run_config(CONFIG_DIR / "tiny-v12.yaml")
    domains = [(s.env, sorted(s.env_kwargs.items())) for s in v9.data.stream_configs()]
    for run in (v11, v12):
        assert run.train.init_from == "reference_model/checkpoints/pan-tiny-v9"
        assert [(s.env, sorted(s.env_kwargs.items())) for s in run.data.stream_configs()] == domains
        assert all(s.weight > 0 for s in run.data.stream_configs())
    assert v11.model == v9.model
    assert v11.train.ae_decoder_only and v11.train.ae_steps > 0 and v11.train.steps == 0
    assert v12.model == dataclasses.replace(v9.model, object_weight=3.0)
    assert v12.train.init_encoder == "runs/pan-tiny-v11/model"  # h: v11's run
    assert v12.train.ae_steps == 0 and v12.train.steps > 0
    # the shipped v12 keeps v9's h encoder half, which is v4's (v9 retrained only the decoder
    # half), and so the latents every f and g since v4 learned on, bit for bit
    folder = CONFIG_DIR.parent / "checkpoints"
    a = load_file(str(folder / "pan-tiny-v4" / "model.safetensors"))
    b = load_file(str(folder / "pan-tiny-v12" / "model.safetensors"))
    h_encoder = [k for k in a if k.startswith("encoder.") and not k.startswith(_H_DECODER)]
    assert a.keys() == b.keys() and h_encoder and all(a[k].equal(b[k]) for k in h_encoder)
    for part in (_H_DECODER, ("backbone.", "decoder.")):  # h's decoder, f and g all moved
        assert not all(a[k].equal(b[k]) for k in a if k.startswith(part))


@pytest.mark.parametrize("name", ["pan-tiny", "pan-tiny-v4", "pan-tiny-v12"])
def test_shipped_checkpoints_load_and_fit_the_size_limit(name: str) -> None:
    folder = CONFIG_DIR.parent / "checkpoints" / name
    assert (folder / "model.safetensors").stat().st_size <= 20 * 2**20
    model = PanModel.from_pretrained(folder)
    doc = json.loads((folder / "config.json").read_text())
    config = doc["training"]["command"].split("--config ")[1].split()[0]
    run = load_run_config(CONFIG_DIR.parent.parent / config)  # the config it was trained from
    assert dataclasses.asdict(run.model) == dataclasses.asdict(model.config)
    if name != "pan-tiny":  # the multi-domain checkpoints predict rewards, take vectors
        assert model.config.reward_head and model.config.action_dim == 2
    z = model.encode_frames(_frames(7))[:, :2]
    out = model.predict_next(z, model.encode_actions(ACTIONS), _gens(2), steps=2)
    assert out.shape == (2, 4, 16, 16) and torch.isfinite(out).all()


def test_run_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {resolution: 32}\ntrain: {batch_sise: 4}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'batch_sise' in train.*batch_size"):
        load_run_config(bad)
    bad.write_text("train: {steps: many}\n")
    with pytest.raises(ConfigError, match=r"train\.steps.*str 'many'"):
        load_run_config(bad)
    bad.write_text("model: {objective: jepa}\n")
    with pytest.raises(ConfigError, match="objective"):
        load_run_config(bad)
    with pytest.raises(ConfigError, match=r"not found.*tiny\.yaml"):
        load_run_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("layers, kv_heads", [(1, 2), (3, 2), (2, 1)])
def test_last_round_is_the_forward_pass_bit_for_bit(layers: int, kv_heads: int) -> None:
    # Rollout steps read only the last round's states: the trimmed pass must give exactly the
    # full pass's values, whatever the batch, the rounds and the thread count.
    cfg = tiny_config()
    cfg = dataclasses.replace(
        cfg, backbone=dataclasses.replace(cfg.backbone, num_layers=layers, num_kv_heads=kv_heads)
    )
    torch.manual_seed(2)
    model = PanModel(cfg).eval()
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            for b, rounds in ((1, 2), (5, 2), (17, 2), (3, 1)):
                z = torch.randn(b, rounds, 4, 16, 16)
                ids = model.encode_actions([["move the red circle up", "push left"][:rounds]] * b)
                with torch.no_grad():
                    full = model.backbone(z, ids)[:, -1]
                    last = model.backbone.last_round(z, ids)
                assert torch.equal(last, full), (n_threads, b, rounds)
    finally:
        torch.set_num_threads(threads)
