"""EpisodeSource: env-backed and WR-Arena episodes by index, and kinds found through SOURCES."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from panbench.data.episodes import EnvSource, Episode, EpisodeSource, make_episode
from panbench.data.sources import SOURCES, episode_source, source_kinds
from panbench.data.sources.wr_arena import ImageEpisode, WrArenaSource
from panbench.data.wr_arena import import_wr_arena
from panbench.envs import make as make_env
from panbench.errors import ConfigError, UnknownNameError
from panbench.protocols import PROTOCOLS
from panbench.suite import load_task
from tests.wr_arena_fake import write_fake_wr_arena

TASKS = Path(__file__).resolve().parents[2] / "tasks"


def _same(a: Episode, b: Episode) -> None:
    assert type(a) is type(b)
    assert (a.index, a.episode_id, a.seed, a.hash) == (b.index, b.episode_id, b.seed, b.hash)
    np.testing.assert_array_equal(a.context_frames, b.context_frames)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert [x.index for x in a.actions] == [x.index for x in b.actions]
    assert [x.text for x in a.actions] == [x.text for x in b.actions]
    assert [x.index for x in a.context_actions] == [x.index for x in b.context_actions]


# ------------------------------------------------------------------------------- env-backed
@pytest.fixture(scope="module")
def agent_sim() -> tuple[Any, Any]:
    task = load_task(TASKS / "agent-sim.yaml")
    env = make_env(task.env.name, resolution=task.env.resolution, **dict(task.env.kwargs))
    return task, env


def test_env_source_gives_make_episode_by_index(agent_sim: tuple[Any, Any]) -> None:
    task, env = agent_sim
    source = episode_source(task, env)
    assert isinstance(source, EnvSource) and source.kind == "env"
    assert len(source) == task.episodes.count == 200
    ep = task.episodes
    for index in (0, 7, 199):
        want = make_episode(env, task.name, ep.seed, index, ep.context, ep.horizon, ep.policy)
        got = source.episode(index)
        _same(got, want)
        assert got.episode_id == f"agent-sim/{index:05d}"
        assert got.context_frames.shape == (ep.context, 64, 64, 3)
        assert len(got.actions) == ep.horizon == len(got.frames)
    # Reading episodes in another order gives the same ones (the harness shards by index).
    _same(source.episode(7), make_episode(env, task.name, ep.seed, 7, 2, 8, "agent"))


def test_env_source_provenance_and_missing_env(agent_sim: tuple[Any, Any]) -> None:
    task, env = agent_sim
    assert EnvSource.from_task(task, env).provenance() == {
        "kind": "env",
        "env": "shapes",
        "count": 200,
        "seed": 1000,
        "context": 2,
        "horizon": 8,
        "policy": "agent",
    }
    with pytest.raises(ConfigError, match=r"expected the task's env .* but got None"):
        episode_source(task, None)


def test_protocol_reads_its_episodes_from_the_source(agent_sim: tuple[Any, Any]) -> None:
    task, env = agent_sim
    protocol = PROTOCOLS.get(task.protocol)(task, env)
    assert isinstance(protocol.source, EnvSource)
    _same(protocol.episode(3), EnvSource.from_task(task, env).episode(3))


# ------------------------------------------------------------------------------ data-backed
@pytest.fixture
def stepwise(tmp_path: Path) -> Any:
    tree = write_fake_wr_arena(tmp_path / "WR-Arena")
    import_wr_arena(tree.root, tmp_path / "tasks", tasks=["wr-stepwise"])
    return load_task(tmp_path / "tasks" / "wr-stepwise.yaml")


def test_wr_arena_source_is_found_by_kind(stepwise: Any) -> None:
    assert "wr-arena" in source_kinds()
    source = episode_source(stepwise)
    assert isinstance(source, WrArenaSource) and source.kind == stepwise.data.kind == "wr-arena"
    assert len(source) == stepwise.episodes.count > 0
    again = WrArenaSource(stepwise)
    for index in range(len(source)):
        got = source.episode(index)
        assert isinstance(got, ImageEpisode)
        _same(got, again.episode(index))
        assert got.context_frames.shape == (1, 256, 256, 3) and got.frames.shape[0] == 0
        assert got.choices is not None and got.sample["answer"] >= 1
    assert source.provenance()["manifest_sha256"] == stepwise.data.manifest_sha256


def test_wr_protocol_reads_the_manifest_source(stepwise: Any) -> None:
    protocol = PROTOCOLS.get(stepwise.protocol)(stepwise, None)
    assert isinstance(protocol.source, WrArenaSource)
    _same(protocol.episode(0), WrArenaSource(stepwise).episode(0))
    assert protocol.extra_results()["data"] == protocol.source.provenance()


# ------------------------------------------------------------------------- registering kinds
class CountingSource(EpisodeSource):
    """A data-backed kind a plugin could ship: blank frames, one text action each."""

    kind: ClassVar[str] = "counting"

    def __init__(self, task: Any) -> None:
        self.task = task

    def __len__(self) -> int:
        return int(self.task.episodes.count)

    def episode(self, index: int) -> Episode:
        from panbench.envs.base import Action

        frames = np.full((1, 8, 8, 3), index, dtype=np.uint8)
        return Episode(
            index=index,
            episode_id=f"{self.task.name}/{index:05d}",
            seed=index,
            context_frames=frames,
            context_actions=[],
            context_states=[],
            actions=[Action.text_only(f"count {index}")],
            states=[],
            frames=frames[:0],
        )

    def provenance(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": len(self)}


def _counting_task() -> Any:
    # Only what episode_source and the source read: a stand-in for a task whose YAML says
    # `data: {kind: counting}` (the task spec's own check of data.kind is the suite's business).
    return SimpleNamespace(
        name="count-task", data=SimpleNamespace(kind="counting"), episodes=SimpleNamespace(count=3)
    )


@pytest.fixture
def isolated_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SOURCES, "_entries", dict(SOURCES._entries))
    monkeypatch.setattr(SOURCES, "_entry_points_loaded", False)
    monkeypatch.setattr("panbench.registry.entry_points", lambda group: [])


def test_a_kind_registered_in_sources_is_found(isolated_sources: None) -> None:
    with pytest.raises(UnknownNameError, match="Unknown episode source 'counting'"):
        episode_source(_counting_task())
    # Which built-in kinds are registered by now depends on what other tests imported first.
    before = source_kinds()
    assert "wr-arena" in before and "counting" not in before
    SOURCES.register("counting", CountingSource)
    assert source_kinds() == sorted([*before, "counting"])
    source = episode_source(_counting_task())
    assert isinstance(source, CountingSource) and len(source) == 3
    assert source.episode(2).actions[0].text == "count 2"
    assert source.provenance() == {"kind": "counting", "count": 3}


def test_a_kind_from_an_entry_point_is_found(
    isolated_sources: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = EntryPoint(name="counting", value=f"{__name__}:CountingSource", group="panbench.sources")
    monkeypatch.setattr(
        "panbench.registry.entry_points",
        lambda group: [ep] if group == "panbench.sources" else [],
    )
    assert "counting" in source_kinds()
    assert isinstance(episode_source(_counting_task()), CountingSource)
