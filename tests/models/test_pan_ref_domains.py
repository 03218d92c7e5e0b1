"""pan-ref on every domain: reward predictions, continuous actions, declared spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from panbench.data.episodes import make_episode
from panbench.envs import make
from panbench.envs.base import Action
from panbench.errors import ConfigError
from panbench.models.api import ActionSpace
from panbench.models.registry import load_model
from panbench.protocols.base import ModelRunner

pytest.importorskip("diffusers")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from reference_model.model import PanModel
    from tests.reference_model.helpers import tiny_config

    torch.manual_seed(4)
    model = PanModel(dataclasses.replace(tiny_config(), reward_head=True, action_dim=2))
    with torch.no_grad():  # non-zero, so the state tokens (and the actions) reach the frames
        model.decoder.state_proj.weight.normal_(0.0, 0.5)
        model.backbone.outcome_out.weight.normal_(0.0, 1.0)
    path = tmp_path_factory.mktemp("pan-ref-v2") / "ckpt"
    model.save_pretrained(path, training={"command": "test"})
    return path


def test_spec_declares_rewards_and_continuous_actions(checkpoint: Path) -> None:
    text = load_model("pan-ref", {"path": str(checkpoint)}).spec
    assert text.action_space is ActionSpace.TEXT and text.predicts_rewards
    assert text.action_dim is None
    cont = load_model("pan-ref", {"path": str(checkpoint), "action_space": "continuous"}).spec
    assert cont.action_space is ActionSpace.CONTINUOUS and cont.action_dim == 2


def test_continuous_needs_a_checkpoint_trained_on_vectors(tmp_path: Path) -> None:
    from tests.reference_model.helpers import tiny_model

    tiny_model().save_pretrained(tmp_path / "plain")
    with pytest.raises(ConfigError, match="action_dim 0"):
        load_model("pan-ref", {"path": str(tmp_path / "plain"), "action_space": "continuous"})
    with pytest.raises(ConfigError, match="text or continuous"):
        load_model("pan-ref", {"path": str(tmp_path / "plain"), "action_space": "discrete"})
    plain = load_model("pan-ref", {"path": str(tmp_path / "plain")})
    assert not plain.spec.predicts_rewards


def test_outcomes_are_the_reward_heads_prediction(checkpoint: Path) -> None:
    import torch

    model = load_model("pan-ref", {"path": str(checkpoint), "steps": 1})
    env = make("atari-pong", resolution=84)
    eps = [make_episode(env, "t", 3, i, 2, 1, "random") for i in range(2)]
    runner = ModelRunner(model, env, 84)
    state = runner.reset(eps)
    latents = state.latents.clone()
    state, _ = runner.step(state, [e.actions[0] for e in eps], "test")
    rewards, terminals = runner.outcomes(state, 2, "test")
    # Independently: the head on f's state tokens for the same history and actions.
    net = model.model
    texts = [[e.context_actions[-1].text, e.actions[0].text] for e in eps]
    with torch.no_grad():
        states = net.backbone(latents, net.encode_actions(texts))[:, -1]
        raw = net.backbone.outcome_out(states.mean(1)).numpy()
    np.testing.assert_allclose(rewards, np.clip(raw[:, 0], -1, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(terminals, raw[:, 1] > 0)
    # A clone keeps the outcomes of the step it was taken after.
    again = model.outcomes(model.clone(state))
    np.testing.assert_array_equal(again[0], rewards)


def test_a_continuous_action_reads_as_its_numbers(checkpoint: Path) -> None:
    model = load_model("pan-ref", {"path": str(checkpoint), "steps": 1})
    env = make("pusht", resolution=64)
    eps = [make_episode(env, "t", 5, 0, 2, 1, "continuous")]
    runner = ModelRunner(model, env, 64)
    push = eps[0].actions[0]
    assert push.vector is not None and not push.has_index
    _, by_vector = runner.step(runner.reset(eps), [push], "test")
    words = Action.text_only("push " + " ".join(f"{v:+.2f}" for v in push.vector))
    _, by_text = runner.step(runner.reset(eps), [words], "test")
    np.testing.assert_array_equal(by_vector, by_text)
    _, by_name = runner.step(runner.reset(eps), [Action.text_only(push.text)], "test")
    assert not np.array_equal(by_vector, by_name)
