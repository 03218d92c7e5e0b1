"""evaluate(): runs a model over tasks. It only loops, batches, shards, resumes and writes.

The harness knows no task type: each task's protocol (named in its YAML) turns episodes and a
model into per-episode records. Records are appended to ``samples/<task>.part-<rank>.jsonl`` as
batches finish (flushed and fsynced), so an interrupted run resumes from what it finished; when a
task is complete, rank 0 merges the parts into ``samples/<task>.jsonl`` (sorted by episode index,
written atomically) and, at the end, writes ``results.json`` atomically.

Under ``torchrun`` (``WORLD_SIZE`` > 1) rank r takes the episodes whose index is r modulo the world
size; per-episode values depend only on the episode, never on the rank, batch or resume point.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError, DataError, PanbenchError
from panbench.io import atomic_write_json, read_versioned_json
from panbench.metrics.registry import headline_score
from panbench.records import SampleRecord
from panbench.results import (
    SCHEMA_VERSION,
    dumps_record,
    environment_info,
    git_info,
    sanitize,
    task_metrics,
)
from panbench.samples import SampleStore

RUN_FILE = "run.json"


class JudgementsPending(PanbenchError):
    """A run ended with clips waiting for human scores; finished episodes are on disk.

    Attributes:
        pending: per task, the number of episodes whose judgements are pending.
        sheet: the judging sheet the judge wrote, if it has one.
    """

    def __init__(self, pending: Mapping[str, int], sheet: Path | None) -> None:
        self.pending = dict(pending)
        self.sheet = sheet
        total = sum(self.pending.values())
        where = ", ".join(f"{task} ({n})" for task, n in self.pending.items())
        sheet_text = f"open {sheet}, " if sheet is not None else ""
        super().__init__(
            f"{total} episode(s) await human judgements: {where}. To finish: {sheet_text}score "
            "every item, press Export, then rerun the same command adding scores=<the exported "
            "file> to --judge-args; finished episodes are kept and no results.json is written "
            "until every judgement is in."
        )


def _destroy_process_group() -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        if world > 1:
            import torch.distributed as td

            if not td.is_initialized():
                td.init_process_group(backend="gloo")
                # Left to interpreter teardown, gloo's worker threads can be destroyed while
                # still joinable, and the process aborts ("terminate called without an active
                # exception") after its work is done; tear the group down explicitly instead.
                atexit.register(_destroy_process_group)
        return cls(rank=rank, world_size=world)

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as td

            td.barrier()

    def settle(self, error: BaseException | None) -> None:
        """A barrier at which the ranks also agree whether any of them failed.

        Every rank calls it, with the exception it caught (or ``None``). The failing rank
        re-raises its own error; the others raise a :class:`PanbenchError` naming that rank,
        so no rank waits at a barrier for one that has stopped (torchrun would kill them only
        at its timeout). Finished episodes stay on disk, so a rerun resumes.
        """
        if self.world_size > 1:
            import torch
            import torch.distributed as td

            flag = torch.tensor([0 if error is None else 1 + self.rank], dtype=torch.int64)
            td.all_reduce(flag, op=td.ReduceOp.MAX)
            failed = int(flag.item()) - 1
            if error is None and failed >= 0:
                raise PanbenchError(
                    f"Rank {self.rank} stopped because rank {failed} failed (its error is "
                    "printed by that rank). Finished episodes are kept; rerun the same command "
                    "to resume."
                )
        if error is not None:
            raise error

    @property
    def is_main(self) -> bool:
        return self.rank == 0


#: episodes per model call; never changes per-episode values (pan-ref runs 16-row micro-batches)
DEFAULT_BATCH_SIZE = 16


def _resolve_tasks(
    suite: str | None, tasks: Sequence[str] | None, seed: int | None, limit: int | None
) -> tuple[dict[str, Any], list[Any]]:
    from panbench.suite import load_suite, load_task

    if (suite is None) == (not tasks):
        raise ConfigError("Expected exactly one of --suite or --tasks.")
    if suite is not None:
        s = load_suite(suite)
        specs = list(s.tasks)
        suite_info = {"name": s.name, "version": s.version, "hash": s.hash}
    else:
        assert tasks is not None
        specs = [load_task(t) for t in tasks]
        joined = hashlib.sha256(",".join(t.hash for t in specs).encode()).hexdigest()
        suite_info = {"name": "custom", "version": "0", "hash": joined}
    if seed is not None:
        specs = [t.with_overrides({"episodes": {"seed": int(seed)}}) for t in specs]
    if limit is not None and limit < 1:
        raise ConfigError(f"Expected --limit to be a positive integer, but got {limit}.")
    names = [t.name for t in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"Expected distinct task names, but got {names}.")
    return suite_info, specs


def _identity(episode: Any) -> dict[str, Any]:
    """The fields of a samples line that name the episode."""
    return {
        "index": episode.index,
        "episode_id": episode.episode_id,
        "hash": episode.hash,
        "seed": episode.seed,
    }


def _task_count(task: Any, limit: int | None) -> int:
    return min(task.episodes.count, limit) if limit is not None else task.episodes.count


def _check_run_file(out: Path, config: Mapping[str, Any]) -> None:
    path = out / RUN_FILE
    if not path.exists():
        return
    previous = read_versioned_json(
        path,
        versions=config["schema_version"],
        version_key="schema_version",
        what="run file",
        error=ConfigError,
        hint=f"{out} holds a run of another panbench version; use another --out.",
    )
    if previous != config:
        diff = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
        raise ConfigError(
            f"{out} holds a different run (differs in: {', '.join(diff)}). Resuming only works "
            "with the same model, arguments, tasks, seed and limit; use another --out."
        )


@dataclass
class _Run:
    """What every task of one :func:`evaluate` call shares."""

    out: Path
    store: SampleStore
    dist: Dist
    model: Any
    judge: Any
    limit: int | None
    batch_size: int
    save_videos: int
    reporter: Any
    model_name: str


def evaluate(
    model: str,
    model_args: Mapping[str, Any] | None = None,
    *,
    out: str | os.PathLike[str],
    suite: str | None = None,
    tasks: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    save_videos: int = 0,
    progress: bool | Any = True,
    console: Any = None,
    judge: str | None = None,
    judge_args: Mapping[str, Any] | None = None,
    model_timeout: float | None = None,
) -> dict[str, Any]:
    """Evaluates ``model`` on a suite (or a list of tasks) and writes the results folder.

    Args:
        model: a registered model name or a ``"module:Class"`` path.
        model_args: keyword arguments for the adapter.
        out: the results folder; rerunning with the same folder resumes.
        suite: a suite name or YAML path (exclusive with ``tasks``).
        tasks: task names or YAML paths.
        limit: score at most this many episodes per task.
        seed: replaces every task's episode seed (this changes the task hashes).
        batch_size: episodes per model call; never changes per-episode values.
        device: passed to the adapter's ``to()``.
        save_videos: write predicted-versus-true videos of the first K episodes per task.
        progress: show progress per task (bars on a terminal, periodic lines in a log), or a
            :class:`panbench.progress.Reporter` shared by several calls (one overall count).
        console: the rich console progress draws on.
        judge: a judge kind (``panbench.judges``) for tasks scored by a judge; tasks that need
            one are refused up front without it.
        judge_args: the judge's options (``--judge-args k=v,...``).
        model_timeout: seconds each adapter call may take (``GuardedModel``); None: no limit.

    Returns:
        The results dict written to ``results.json`` (on rank 0; other ranks get ``{}``).

    Raises:
        ContractError: the adapter broke its contract; finished episodes stay on disk, no
            results.json is written.
        ConfigError: a task needs a judge and none was given (checked before anything runs).
        JudgementsPending: a human judge has clips to score; finished episodes stay on disk,
            the judging sheet is written, no results.json is written.
    """
    from panbench.models.registry import load_model

    if batch_size < 1:
        raise ConfigError(f"Expected --batch-size >= 1, but got {batch_size}.")
    from panbench.threads import configure

    configure()  # no-op when the CLI already did: threads from the CPUs this process may use
    out = Path(out)
    suite_info, specs = _resolve_tasks(suite, tasks, seed, limit)
    envs, protocols = _build_protocols(specs)
    judge_obj = _make_judge(
        judge, judge_args, [p for p in protocols.values() if p.requires_judge()]
    )
    dist = Dist.from_env()
    if judge_obj is not None and judge_obj.single_process and dist.world_size > 1:
        raise ConfigError(
            f"The {judge_obj.kind!r} judge runs in one process; run without torchrun."
        )
    from panbench.models.api import check_action_space
    from panbench.models.guard import GuardedModel

    # The timeout is not part of run.json: a resume may change it.
    wm = GuardedModel(load_model(model, model_args), model_timeout).to(device)
    for task in specs:  # before anything is written: a mismatch is the user's input, not a run
        check_action_space(wm.spec, envs[task.name], task.name)
    run_config = _run_config(model, model_args, suite_info, specs, limit, seed, judge_obj)
    identity = wm.identity()
    if identity:  # e.g. the model a server serves: a resume must find the same one
        run_config["model_identity"] = sanitize(dict(identity))
    store = SampleStore(out / "samples")
    if dist.is_main:
        store.folder.mkdir(parents=True, exist_ok=True)
        _check_run_file(out, run_config)
        atomic_write_json(out / RUN_FILE, run_config)
    dist.barrier()

    reporter = _reporter(progress, console, dist.is_main)
    run = _Run(out, store, dist, wm, judge_obj, limit, batch_size, save_videos, reporter, model)
    started = time.perf_counter()
    checkout = git_info()  # the code this run starts from (see _build_results)
    task_results: dict[str, Any] = {}
    pending: dict[str, int] = {}
    for task in specs:
        entry, waiting = _run_task(run, task, protocols[task.name], envs[task.name])
        if waiting:
            pending[task.name] = waiting  # merged on the rerun that brings the judgements
        elif entry is not None:
            task_results[task.name] = entry

    if judge_obj is not None:
        judge_obj.close()  # the human judge writes its sheet here
        if pending:
            raise JudgementsPending(pending, getattr(judge_obj, "sheet_path", None))
    if not dist.is_main:
        return {}
    results = _build_results(
        wm,
        model,
        model_args,
        suite_info,
        task_results,
        limit,
        seed,
        batch_size,
        device,
        dist,
        time.perf_counter() - started,
        checkout,
    )
    atomic_write_json(out / "results.json", results)
    return results


def _build_protocols(specs: Sequence[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each task's env (None for a task on a data source) and protocol instance, by task name."""
    from panbench.envs import make as make_env
    from panbench.protocols import PROTOCOLS

    envs: dict[str, Any] = {}
    protocols: dict[str, Any] = {}
    for task in specs:
        envs[task.name] = None
        if task.env is not None:
            envs[task.name] = make_env(
                task.env.name, resolution=task.env.resolution, **dict(task.env.kwargs)
            )
        protocols[task.name] = PROTOCOLS.get(task.protocol)(task, envs[task.name])
    return envs, protocols


def _run_config(
    model: str,
    model_args: Mapping[str, Any] | None,
    suite_info: dict[str, Any],
    specs: Sequence[Any],
    limit: int | None,
    seed: int | None,
    judge: Any,
) -> dict[str, Any]:
    """What run.json records: a resume must match it exactly."""
    config: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "model_args": dict(model_args or {}),
        "suite": suite_info,
        "tasks": {t.name: t.hash for t in specs},
        "limit": limit,
        "seed": seed,
    }
    if judge is not None:
        # Who judges is part of the run (a resume may not switch judges); a human judge's
        # scores file may change between resumes, so only kind, model and endpoint count.
        prov = judge.provenance()
        config["judge"] = {k: prov.get(k) for k in ("kind", "model", "endpoint")}
    return sanitize(config)


def _run_task(run: _Run, task: Any, protocol: Any, env: Any) -> tuple[dict[str, Any] | None, int]:
    """Runs this rank's unfinished episodes of ``task``, then (rank 0) merges and aggregates.

    Returns:
        The task's results entry (rank 0, when no judgement is pending; else None) and the
        number of this rank's episodes whose judgements are pending.
    """
    from panbench.protocols.base import ModelRunner

    t0 = time.perf_counter()
    protocol.judge = run.judge
    settings = run.model.for_task(task.name)  # before any episode, on every rank and resume
    runner = ModelRunner(run.model, env, task.resolution)
    n = _task_count(task, run.limit)
    mine = [i for i in range(n) if i % run.dist.world_size == run.dist.rank]
    done = run.store.done(task.name)
    waiting = 0
    error: Exception | None = None
    try:
        todo = [i for i in mine if i not in done]
        reused = len(mine) - len(todo)
        with run.reporter.task(run.model_name, task.name, len(mine), reused=reused) as bar:
            waiting = _score_episodes(run, task, protocol, runner, todo, bar)
        if run.save_videos:
            _videos_of_resumed(run, task.name, protocol, runner, [i for i in mine if i in done])
    except Exception as err:  # settled below: every rank stops, none waits at a barrier
        error = err
    run.dist.settle(error)
    if waiting:
        return None, waiting
    entry: dict[str, Any] | None = None
    error = None
    try:
        if run.dist.is_main:
            recs = run.store.merge(task.name, n)
            entry = _task_entry(task, protocol, recs, n, run.limit)
            entry["timing"] = {
                "seconds": round(time.perf_counter() - t0, 3),
                "model": runner.stats.to_dict(),
            }
            if settings:
                entry["model_settings"] = dict(settings)
            entry.update(protocol.extra_results())
    except Exception as err:
        error = err
    run.dist.settle(error)
    return entry, 0


def _score_episodes(
    run: _Run,
    task: Any,
    protocol: Any,
    runner: Any,
    todo: Sequence[int],
    advance: Callable[[int], None],
) -> int:
    """Scores episodes ``todo`` in batches, appending finished ones to this rank's part file.

    Returns:
        How many of them await a judgement (not written: a rerun with the scores runs them).
    """
    waiting = 0
    for start in range(0, len(todo), run.batch_size):
        batch = [protocol.episode(i) for i in todo[start : start + run.batch_size]]
        records = _checked(task, protocol.run_batch(runner, batch), len(batch))
        lines = [
            r.sample_line(_identity(e))
            for e, r in zip(batch, records, strict=True)
            if not r.pending
        ]
        waiting += len(records) - len(lines)
        run.store.append(task.name, run.dist.rank, lines)
        if run.save_videos:  # every rank saves its own episodes' videos
            _save_videos(run.out, task.name, batch, records, run.save_videos)
        advance(len(batch))
    return waiting


def _checked(task: Any, records: Any, n: int) -> list[SampleRecord]:
    """The protocol's records, refused unless there is one :class:`SampleRecord` per episode."""
    if len(records) != n:
        raise DataError(
            f"Protocol {task.protocol!r}: expected {n} records for {n} episodes, but got "
            f"{len(records)}."
        )
    wrong = next((r for r in records if not isinstance(r, SampleRecord)), None)
    if wrong is not None:
        raise DataError(
            f"Protocol {task.protocol!r}: expected panbench.records.SampleRecord records, but "
            f"got {type(wrong).__name__}."
        )
    return list(records)


def _videos_of_resumed(
    run: _Run, task: str, protocol: Any, runner: Any, resumed: Sequence[int]
) -> None:
    """Renders the videos of episodes finished before an interruption that have none.

    Rollouts are deterministic, so running them again for the video only is exact; the
    records on disk stay as they are.
    """
    missing = [
        i
        for i in resumed
        if i < run.save_videos and not (run.out / "videos" / task / f"{i:05d}.mp4").exists()
    ]
    for start in range(0, len(missing), run.batch_size):
        batch = [protocol.episode(i) for i in missing[start : start + run.batch_size]]
        records = protocol.run_batch(runner, batch)
        _save_videos(run.out, task, batch, records, run.save_videos)


def _task_entry(
    task: Any, protocol: Any, records: list[dict[str, Any]], n: int, limit: int | None
) -> dict[str, Any]:
    skipped = dict(getattr(protocol, "skipped", {}))
    metrics = task_metrics(records, task.metrics, skipped)
    means = {m: v["value"] for m, v in metrics.items()}
    headline = headline_score(task.headline, means.get(task.headline))
    samples_text = "".join(dumps_record(r) + "\n" for r in records)
    source: dict[str, Any] = {}
    if task.env is not None:
        source["env"] = {
            "name": task.env.name,
            "resolution": task.env.resolution,
            "kwargs": dict(task.env.kwargs),
        }
    return {
        "version": task.version,
        "hash": task.hash,
        "protocol": task.protocol,
        **source,
        "n_episodes": n,
        "complete": limit is None or n == task.episodes.count,
        "headline": {"metric": task.headline, "score": headline},
        "metrics": metrics,
        "skipped": skipped,
        "samples": f"samples/{task.name}.jsonl",
        "samples_sha256": hashlib.sha256(samples_text.encode()).hexdigest(),
    }


def _make_judge(kind: str | None, args: Mapping[str, Any] | None, needing: Sequence[Any]) -> Any:
    """Builds the run's judge, or refuses up front when a task needs one and none is given."""
    if kind is None:
        if args:
            raise ConfigError("--judge-args was given without --judge KIND.")
        if needing:
            from panbench.judges import JUDGES

            names = ", ".join(p.task.name for p in needing)
            raise ConfigError(
                f"Task(s) {names} are scored by a judge, but no judge was given. Expected "
                f"--judge KIND (one of: {', '.join(JUDGES.names())}) with its --judge-args "
                "(`panbench judges ls` lists each judge's options), or a suite without these "
                "tasks."
            )
        return None
    from panbench.judges import make_judge

    return make_judge(kind, **dict(args or {}))


def _build_results(
    wm: Any,
    model: str,
    model_args: Mapping[str, Any] | None,
    suite_info: dict[str, Any],
    task_results: dict[str, Any],
    limit: int | None,
    seed: int | None,
    batch_size: int,
    device: str,
    dist: Dist,
    seconds: float,
    checkout: dict[str, Any],
) -> dict[str, Any]:
    """``checkout``: the commit and dirty flag (:func:`git_info`) the run started from."""
    from panbench.threads import configure

    threads = configure()  # the plan this process runs under (applied at evaluate's start)
    env_info = environment_info()
    # The commit recorded is the one the run started from; a checkout that changed under the run
    # (a commit or an edit made while it ran) leaves no one commit the results came from.
    git = checkout if env_info.pop("git") == checkout else {**checkout, "dirty": True}
    described = dict(wm.describe())
    # Summed in task-name order, the order results.json stores the tasks in, so that the mean
    # recomputed from the file (results.verify_results) is bit-identical to the one written.
    scores = [
        task_results[name]["headline"]["score"]
        for name in sorted(task_results)
        if task_results[name]["headline"]["score"] is not None
    ]
    return sanitize(
        {
            "schema_version": SCHEMA_VERSION,
            "panbench_version": env_info.pop("panbench_version"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git": git,
            "suite": suite_info,
            "model": {
                "name": model,
                "args": dict(model_args or {}),
                "spec": wm.spec.to_dict(),
                "checkpoint_sha256": described.pop("checkpoint_sha256", None),
                "info": described,
            },
            "run": {
                "seed": seed,
                "limit": limit,
                "batch_size": batch_size,
                "world_size": dist.world_size,
                "device": device,
                "threads": threads.to_dict(),
            },
            "environment": env_info,
            "timings": {"total_seconds": round(seconds, 3)},
            "tasks": task_results,
            "summary": {
                "score": sum(scores) / len(scores) if scores else None,
                "n_tasks": len(task_results),
            },
        }
    )


def _reporter(progress: bool | Any, console: Any, is_main: bool) -> Any:
    """The run's progress reporter: the caller's, or a new one (silent on ranks other than 0)."""
    from panbench.progress import Reporter

    if isinstance(progress, Reporter):
        return progress if is_main else Reporter(progress.console, enabled=False)
    return Reporter(console, enabled=bool(progress) and is_main)


def _save_videos(
    out: Path, task: str, episodes: Sequence[Any], records: Sequence[SampleRecord], k: int
) -> None:
    """Writes predicted | true side-by-side mp4s for episodes with index < k (if the protocol kept them)."""
    from panbench.data.videos import write_video

    folder = out / "videos" / task
    for ep, rec in zip(episodes, records, strict=True):
        pred = rec.frames
        if ep.index >= k or pred is None:
            continue
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        truth = ep.frames[: len(pred)]
        # Tasks on imported images have no true future: their videos show the prediction only.
        side = np.concatenate([pred, truth], axis=2) if len(truth) == len(pred) else pred
        write_video(folder / f"{ep.index:05d}.mp4", side)
