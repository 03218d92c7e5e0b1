"""Episode generation: roll out an env with seeded random actions and write an episode folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from panbench.data.format import DatasetWriter, EpisodeRecord
from panbench.envs import Env, State, make
from panbench.errors import ConfigError, ContractError

__all__ = [
    "action_rng",
    "episode_seed",
    "generate_episodes",
    "replay_episode",
    "rollout_episode",
]

#: recorded in the index so a reader knows how seeds and actions were drawn.
SEED_DERIVATION = (
    "episode_seed = SeedSequence(entropy=seed, spawn_key=(episode_id,)).generate_state(1, uint64)[0]"
    " >> 11; actions drawn by env.random_action(state, default_rng(SeedSequence(entropy="
    "episode_seed, spawn_key=(0,))))"
)


def episode_seed(base_seed: int, episode_id: int) -> int:
    """The env seed of episode ``episode_id`` of a run with base seed ``base_seed``.

    Derived with numpy's SeedSequence, so nearby base seeds and episode ids give unrelated seeds.
    53 bits: every JSON reader (JavaScript included) holds such integers exactly.

    Raises:
        ConfigError: either argument is negative.
    """
    if base_seed < 0 or episode_id < 0:
        raise ConfigError(
            f"Expected non-negative seed and episode id, but got {base_seed} and {episode_id}."
        )
    seq = np.random.SeedSequence(entropy=base_seed, spawn_key=(episode_id,))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(11))


def action_rng(seed: int) -> np.random.Generator:
    """The Generator that draws an episode's random actions from its env seed.

    It uses a spawn key, so its stream differs from ``default_rng(seed)``, which an env may use
    for its own initial state: actions are then independent of the initial layout.
    """
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0,)))


def _stack_observations(env: Env, states: Sequence[State]) -> dict[str, np.ndarray]:
    observations = [env.observe(s) for s in states]
    keys = sorted(observations[0])
    for t, obs in enumerate(observations):
        if sorted(obs) != keys:
            raise ContractError(
                f"Env {env.name!r}: expected observe() to return the keys {keys} at every step, "
                f"but step {t} returned {sorted(obs)}."
            )
    return {k: np.stack([np.asarray(obs[k]) for obs in observations]) for k in keys}


def _render(env: Env, states: Sequence[State]) -> np.ndarray:
    frames = np.asarray(env.render_batch(states))
    expected = (len(states), env.resolution, env.resolution, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise ContractError(
            f"Env {env.name!r}: expected render_batch to return uint8 {expected}, but got "
            f"{frames.dtype} {tuple(frames.shape)}."
        )
    return frames


def rollout_episode(env: Env, seed: int, length: int, episode_id: int = 0) -> EpisodeRecord:
    """Rolls ``env`` out from ``reset(seed)`` with uniformly random available actions.

    Args:
        env: the environment.
        seed: the env seed; actions come from :func:`action_rng` of the same seed.
        length: T, the number of frames (T-1 actions).
        episode_id: the id recorded in the episode.

    Returns:
        The episode: frames uint8 [T,H,W,3], T-1 actions, ``observe()`` of each frame stacked.
    """
    rng = action_rng(seed)
    state = env.reset(seed)
    states = [state]
    actions = []
    for _ in range(length - 1):
        action = env.random_action(state, rng)
        actions.append(action.to_dict())
        state = env.step(state, action)
        states.append(state)
    return EpisodeRecord.build(
        episode_id,
        _render(env, states),
        actions,
        _stack_observations(env, states),
        seed=seed,
    )


def replay_episode(
    env: Env, seed: int, actions: Sequence[Mapping[str, Any] | int]
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, np.ndarray]]:
    """Replays recorded actions from ``reset(seed)``: what the env produces for them now.

    Args:
        env: the environment (same name, version and config as when recorded).
        seed: the recorded env seed.
        actions: recorded action dicts (their ``index`` is used) or plain indices.

    Returns:
        ``(frames, actions, states)``: frames uint8 [T,H,W,3], the actions as the env resolves
        them (dicts), and the stacked observations, each [T, ...].
    """
    state = env.reset(seed)
    states = [state]
    resolved = []
    for a in actions:
        index = a["index"] if isinstance(a, Mapping) else a
        action = env.resolve_action(state, int(index))
        resolved.append(action.to_dict())
        state = env.step(state, action)
        states.append(state)
    return _render(env, states), resolved, _stack_observations(env, states)


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"Expected {name} to be an integer >= 1, but got {value!r}.")
    return int(value)


def generate_episodes(
    env: str | Env,
    episodes: int,
    length: int,
    seed: int,
    out: str | Path,
    resolution: int | None = None,
    shard_size: int = 64,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Rolls out ``episodes`` random episodes of ``length`` frames and writes an episode folder.

    Episode ``i`` is reset with :func:`episode_seed` ``(seed, i)`` and driven by
    :func:`action_rng` of that seed, so the same arguments always give byte-identical files.
    The folder (format in docs/data-format.md) appears at ``out`` only once it is complete.

    Args:
        env: an env name (built with :func:`panbench.envs.make`) or an :class:`Env` instance.
        episodes: number of episodes, >= 1.
        length: frames per episode including the first, >= 1.
        seed: base seed, >= 0.
        out: the folder to create; must be absent or empty.
        resolution: frame side in pixels (default 64 for a name; an instance keeps its own).
        shard_size: episodes per shard file.
        env_kwargs: env options for :func:`panbench.envs.make` (names only).
        progress: show a progress bar.

    Returns:
        ``out`` as a Path.

    Raises:
        UnknownNameError: ``env`` names no registered env.
        ConfigError: a count is < 1, the seed is negative, an env option is invalid, or ``out``
            exists and is not empty. Nothing is written in these cases.
    """
    episodes = _check_count("episodes", episodes)
    length = _check_count("length", length)
    shard_size = _check_count("shard_size", shard_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"Expected seed to be an integer >= 0, but got {seed!r}.")
    seed = int(seed)
    if isinstance(env, Env):
        if env_kwargs:
            raise ConfigError("env_kwargs only apply to an env given by name, not to an instance.")
        if resolution is not None and resolution != env.resolution:
            raise ConfigError(
                f"Expected resolution to match the env instance's {env.resolution}, but got "
                f"{resolution}."
            )
        env_obj = env
    else:
        env_obj = make(
            env, resolution=64 if resolution is None else resolution, **(env_kwargs or {})
        )
    source = {
        "kind": "env",
        "generation": {
            "episodes": episodes,
            "length": length,
            "seed": seed,
            "resolution": env_obj.resolution,
            "shard_size": shard_size,
            "env_kwargs": dict(env_kwargs or {}),
            "policy": "uniform-random",
            "seed_derivation": SEED_DERIVATION,
        },
    }
    env_info = {
        "name": env_obj.name,
        "version": env_obj.version,
        "config": env_obj.config,
        "fingerprint": env_obj.fingerprint(),
    }
    with DatasetWriter(
        out,
        source,
        env_info,
        shard_size,
        progress=progress,
        total=episodes,
        description=f"generating {env_obj.name}",
    ) as writer:
        for i in range(episodes):
            writer.add(rollout_episode(env_obj, episode_seed(seed, i), length, episode_id=i))
    return Path(out)
