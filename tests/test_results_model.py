"""The typed results model: every shipped and freshly written results file parses into it, fields
match the JSON, and a malformed field is refused naming its path, expectation and finding."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from panbench.metrics.registry import get_metric
from panbench.results import load_results, read_results, verify_results
from panbench.results_model import (
    MetricEntry,
    Results,
    ResultsError,
    as_results,
    parse_results,
)
from panbench.submissions import read_submission
from tests.models.runs import cached_run

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(REPO.glob("leaderboards/*/submissions/*.json"))
#: submissions written before metric levels were recorded (results schema 1)
SCHEMA_1 = [p for p in SHIPPED if read_submission(p)["results"]["schema_version"] == 1]


def _quick() -> Path:
    return cached_run("oracle", suite="quick", limit=4)


def _raw() -> dict[str, Any]:
    return json.loads((_quick() / "results.json").read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parts[-3]}/{p.stem}" for p in SHIPPED])
def test_shipped_submissions_parse_with_catalogue_levels(path: Path) -> None:
    data = read_submission(path)["results"]
    res = parse_results(data, source=path)
    assert res.schema_version == data["schema_version"] in (1, 2)
    assert res.to_dict() == data and res.to_dict() is not data
    assert res.suite.to_dict() == data["suite"]
    assert res.n_episodes == sum(t["n_episodes"] for t in data["tasks"].values())
    assert res.partial is (data["run"]["limit"] is not None)
    for name, task in res.tasks.items():
        assert task.headline.metric == data["tasks"][name]["headline"]["metric"]
        for metric, entry in task.metrics.items():
            assert entry.level == get_metric(metric).level
            if res.schema_version == 1:
                assert "level" not in entry.raw  # derived, not invented in the stored object
            else:
                assert entry.raw["level"] == entry.level


def test_some_shipped_submissions_are_schema_1() -> None:
    # the schema-1 reading path below needs such files; the quick board's were written before
    # metric levels were recorded
    assert SCHEMA_1


def test_a_written_results_file_maps_field_by_field() -> None:
    data = _raw()
    res = verify_results(_quick())
    assert res == load_results(_quick() / "results.json")
    assert res.schema_version == 2 and res.model.name == "oracle"
    assert res.run.limit == 4 and res.partial
    assert res.provenance.git.commit == data["git"]["commit"]
    for name, task in res.tasks.items():
        raw = data["tasks"][name]
        assert (task.hash, task.n_episodes, task.complete) == (
            raw["hash"],
            raw["n_episodes"],
            raw["complete"],
        )
        assert task.headline.score == raw["headline"]["score"]
        assert list(task.metrics) == list(raw["metrics"])
        for metric, entry in task.metrics.items():
            stored = raw["metrics"][metric]
            assert entry.value == stored["value"] and list(entry.ci95) == stored["ci95"]
            assert entry.higher_is_better is get_metric(metric).higher_is_better
            assert entry.level == stored["level"]
            assert (entry.curve is None) == ("curve" not in stored)


def test_results_are_frozen_and_as_results_keeps_typed_ones() -> None:
    res = load_results(_quick())
    assert as_results(res) is res
    assert as_results(_raw()) == res
    entry = next(iter(next(iter(res.tasks.values())).metrics.values()))
    assert isinstance(entry, MetricEntry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.value = 0.0  # type: ignore[misc]


def test_read_results_fills_levels_of_schema_1_files(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    data = read_submission(SCHEMA_1[0])["results"]
    (folder / "results.json").write_text(json.dumps(data))
    plain = read_results(folder)
    for name, task in plain["tasks"].items():
        for metric, entry in task["metrics"].items():
            assert entry["level"] == get_metric(metric).level
            assert "level" not in data["tasks"][name]["metrics"][metric]


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(_raw())
    *parents, last = path.split("/")
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("tasks/agent-sim", [], "field 'tasks.agent-sim': expected an object, but found <list>"),
        (
            "tasks/agent-sim/metrics/psnr/curve",
            ["x"],
            "field 'tasks.agent-sim.metrics.psnr.curve': expected a list of numbers or nulls",
        ),
        (
            "tasks/agent-sim/metrics/psnr/ci95",
            [2.0, 1.0],
            "field 'tasks.agent-sim.metrics.psnr.ci95': expected lo <= hi, but found [2.0, 1.0]",
        ),
        (
            "model/spec/frames_per_step",
            KeyError,
            "field 'model.spec.frames_per_step': expected the field to be present, "
            "but found <missing>",
        ),
        ("run/batch_size", 0, "field 'run.batch_size': expected an integer >= 1, but found 0"),
        ("tasks", {}, "field 'tasks': expected at least one task, but found {}"),
        ("summary", 3, "field 'summary': expected an object, but found <int>"),
        ("schema_version", True, "field 'schema_version': expected an integer from 1 to 2"),
    ],
)
def test_malformed_fields_are_refused_naming_the_path(path: str, value: Any, message: str) -> None:
    with pytest.raises(ResultsError) as err:
        parse_results(_broken(path, value), source="r.json")
    assert str(err.value).startswith("r.json: ") and message in str(err.value)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(
        ResultsError, match=r"r\.json: field '': expected an object, but found <list>"
    ):
        parse_results([], source="r.json")
    assert isinstance(parse_results(_raw()), Results)
