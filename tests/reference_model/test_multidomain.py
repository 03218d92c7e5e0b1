"""Multi-domain training: weighted env streams, continuous actions as text, the reward head."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from panbench.envs import make
from panbench.envs.base import Action
from panbench.errors import ConfigError
from reference_model.config import DataConfig, load_run_config
from reference_model.data import WindowStream
from reference_model.model import PanModel
from reference_model.recipes import train
from reference_model.tokenizer import action_text
from tests.reference_model.helpers import tiny_config, write_run_config

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

ATARI = {"env": "atari-pong", "resolution": 84, "policy": "random"}
PUSHT = {"env": "pusht", "resolution": 64, "policy": "continuous"}


def _data(*streams: dict) -> DataConfig:
    return DataConfig(source="env", streams=list(streams))


def test_action_text_reads_vectors_as_numbers_and_everything_else_as_text() -> None:
    push = Action(index=-1, text="move the agent up", vector=(0.42131, -1.0))
    assert action_text(push) == "push +0.42 -1.00"
    # A discrete action keeps its text even when it also carries a vector (table3d, maze).
    move = Action(index=2, text="move the pusher forward", vector=(0.0, 0.25))
    assert action_text(move) == "move the pusher forward"
    assert action_text(Action.text_only("open the door")) == "open the door"


def test_one_stream_draws_exactly_what_the_single_env_stream_drew() -> None:
    single = DataConfig(source="env", env="shapes", policy="agent")
    listed = _data({"env": "shapes", "policy": "agent"})
    a_frames, a_texts = WindowStream(single, 32, 3, seed=5).batch(2, 6)
    b_frames, b_texts = WindowStream(listed, 32, 3, seed=5).batch(2, 6)
    assert torch.equal(a_frames, b_frames) and a_texts == b_texts


def test_streams_mix_domains_at_the_model_resolution_with_outcomes() -> None:
    data = _data({"env": "shapes", "policy": "agent"}, ATARI, PUSHT)
    stream = WindowStream(data, 32, 3, seed=0)
    frames, texts, outcomes = stream.windows(0, 24)
    assert frames.shape == (24, 3, 32, 32, 3) and frames.dtype == torch.uint8
    assert outcomes.shape == (24, 2, 3)
    pusht = [i for i, row in enumerate(texts) if row[0].startswith(("push +", "push -"))]
    atari = [i for i, row in enumerate(texts) if "paddle" in row[0] or "serve" in row[0]]
    shapes = [i for i in range(24) if i not in pusht and i not in atari]
    assert pusht and shapes and atari
    # Only Atari windows carry rewards and terminal flags.
    assert outcomes[atari, :, 2].eq(1).all() and outcomes[pusht + shapes, :, 2].eq(0).all()
    # The same step of the same seed is the same batch (resume draws the same windows).
    again = WindowStream(data, 32, 3, seed=0).windows(0, 24)
    assert torch.equal(again[0], frames) and again[1] == texts


def test_stream_weights_set_the_share_of_windows() -> None:
    data = _data(
        {"env": "shapes", "policy": "agent", "weight": 3.0},
        {"env": "bounce", "policy": "random", "weight": 1.0},
    )
    _, texts = WindowStream(data, 32, 2, seed=1).batch(0, 400)
    bounce = sum(row[0].startswith(("push the", "wait")) for row in texts) / len(texts)
    assert 0.18 < bounce < 0.32  # 1/4 expected; 400 draws give a standard error of 0.022


def test_wait_prob_draws_the_envs_wait_action() -> None:
    data = _data({"env": "bounce", "policy": "random", "wait_prob": 1.0})
    _, texts = WindowStream(data, 32, 3, seed=0).batch(0, 5)
    assert all(t == "wait" for row in texts for t in row)


def test_the_table_renders_at_its_own_resolution_and_is_resized() -> None:
    data = _data({"env": "table3d", "resolution": 64, "env_kwargs": {"objects": 2}})
    frames, _ = WindowStream(data, 32, 2, seed=0).batch(0, 1)
    assert frames.shape == (1, 2, 32, 32, 3)
    from panbench.data.frames import resize_frames
    from reference_model.common.training import batch_seed

    # The window's first frame is the env's 64x64 frame of the drawn reset, squashed to 32.
    rng = np.random.default_rng(batch_seed(0, 0, 0, 0))
    env = make("table3d", resolution=64, objects=2)
    state = env.reset(int(rng.integers(2**31 - 1)))
    expected = resize_frames(env.render_batch([state]), 32, mode="squash")[0]
    assert np.array_equal(frames[0, 0].numpy(), expected)


def _write(tmp_path: Path, name: str, streams: list, model: dict | None = None, **train_kw):
    config = write_run_config(tmp_path / name, **train_kw)
    doc = yaml.safe_load(config.read_text())
    doc["data"] = {"source": "env", "streams": streams}
    doc["model"].update(model or {})
    config.write_text(yaml.safe_dump(doc))
    return config


@pytest.mark.parametrize(
    ("stream", "needle"),
    [
        ({"env": "shapes", "weight": 0}, "weight > 0"),
        ({"env": "shapes", "wait_prob": 2}, "wait_prob"),
        ({"env": "shapes", "polcy": "agent"}, "data.streams[0]"),
    ],
)
def test_bad_streams_are_refused_with_their_index(
    tmp_path: Path, stream: dict, needle: str
) -> None:
    config = _write(tmp_path, "bad.yaml", [stream])
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        load_run_config(config)


def test_outcome_loss_matches_an_independent_computation() -> None:
    torch.manual_seed(0)
    model = PanModel(dataclasses.replace(tiny_config(), reward_head=True))
    states = torch.randn(6, 16, 16)
    target = torch.tensor([[3.0, 0, 1], [-0.5, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 1], [-2, 0, 1]])
    got = float(model.outcome_loss(states, target).detach())
    pred = model.backbone.outcome_out(states.mean(1)).detach().numpy().astype(np.float64)
    t = target.numpy().astype(np.float64)
    known = t[:, 2] == 1
    reward = (pred[:, 0] - np.clip(t[:, 0], -1, 1)) ** 2
    p = 1 / (1 + np.exp(-pred[:, 1]))
    bce = -(t[:, 1] * np.log(p) + (1 - t[:, 1]) * np.log(1 - p))
    assert got == pytest.approx(float((reward + bce)[known].mean()), rel=1e-5)
    assert float(model.outcome_loss(states, torch.zeros(6, 3))) == 0.0  # nothing known
    plain = PanModel(tiny_config())
    assert float(plain.outcome_loss(states, target)) == 0.0 and plain.backbone.outcome_out is None


def test_multidomain_run_with_reward_head_resumes_bit_exactly(tmp_path: Path) -> None:
    streams = [{"env": "shapes", "policy": "agent", "wait_prob": 0.2}, ATARI, PUSHT]
    head = {"reward_head": True, "action_dim": 2}
    config = _write(tmp_path, "run.yaml", streams, head, ae_steps=1, steps=3)
    train(config, tmp_path / "straight")
    train(config, tmp_path / "split", max_steps=2)
    train(config, tmp_path / "split", resume=True)
    from safetensors.torch import load_file

    for part in ("checkpoint/model.safetensors", "checkpoint/ema.safetensors"):
        a = load_file(str(tmp_path / "straight" / part))
        b = load_file(str(tmp_path / "split" / part))
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert "backbone.outcome_out.weight" in a
    rows = (tmp_path / "straight" / "log.csv").read_text().splitlines()
    assert rows[0].split(",").count("outcome") == 1
    saved = json.loads((tmp_path / "straight" / "model" / "config.json").read_text())
    assert saved["model"]["reward_head"] is True and saved["model"]["action_dim"] == 2


def test_init_from_warm_starts_every_shared_weight(tmp_path: Path) -> None:
    from reference_model.train import _init_from

    torch.manual_seed(1)
    source = PanModel(tiny_config())
    source.save_pretrained(tmp_path / "src")
    torch.manual_seed(2)
    model = PanModel(dataclasses.replace(tiny_config(), reward_head=True))
    fresh_head = model.backbone.outcome_out.weight.detach().clone()
    _init_from(model, tmp_path / "src")
    own = model.state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(own[key], value), key
    assert torch.equal(model.backbone.outcome_out.weight, fresh_head)
    wider = dataclasses.replace(
        tiny_config(), backbone=dataclasses.replace(tiny_config().backbone, hidden_size=32)
    )
    with pytest.raises(ConfigError, match=r"train\.init_from"):
        _init_from(PanModel(wider), tmp_path / "src")
