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

import datetime as _dt
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panbench.errors import ConfigError, DataError, PanbenchError
from panbench.io import atomic_write_json, atomic_write_text
from panbench.results import (
    SCHEMA_VERSION,
    aggregate_records,
    dumps_record,
    environment_info,
    read_samples,
    sanitize,
)

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


def _task_count(task: Any, limit: int | None) -> int:
    return min(task.episodes.count, limit) if limit is not None else task.episodes.count


def _check_run_file(out: Path, config: Mapping[str, Any]) -> None:
    path = out / RUN_FILE
    if not path.exists():
        return
    try:
        previous = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path} is not valid JSON ({err}); remove it or use another --out."
        ) from err
    if previous != config:
        diff = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
        raise ConfigError(
            f"{out} holds a different run (differs in: {', '.join(diff)}). Resuming only works "
            "with the same model, arguments, tasks, seed and limit; use another --out."
        )


def _part_files(samples_dir: Path, task: str) -> list[Path]:
    return sorted(samples_dir.glob(f"{task}.part-*.jsonl"))


def _done_indices(samples_dir: Path, task: str) -> dict[int, dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    final = samples_dir / f"{task}.jsonl"
    for rec in read_samples(final):
        done[int(rec["index"])] = rec
    for part in _part_files(samples_dir, task):
        for rec in read_samples(part, tolerate_truncated_tail=True):
            done.setdefault(int(rec["index"]), rec)
    return done


def _drop_truncated_tail(path: Path) -> None:
    """Cuts a part file back to its last complete line.

    A killed process can leave a truncated last line. Resuming skips it (its episode is run
    again), but appending after it would bury it mid-file, where it no longer reads as a
    truncated tail and makes the file unreadable; so it is removed before anything is appended.
    """
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())


def _append_records(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    _drop_truncated_tail(path)
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps_record(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _merge_task(samples_dir: Path, task: str, n: int) -> list[dict[str, Any]]:
    done = _done_indices(samples_dir, task)
    missing = [i for i in range(n) if i not in done]
    if missing:
        raise DataError(
            f"Task {task!r}: episodes {missing[:10]} have no records after every rank finished."
        )
    records = [done[i] for i in range(n)]
    atomic_write_text(
        samples_dir / f"{task}.jsonl", "".join(dumps_record(r) + "\n" for r in records)
    )
    for part in _part_files(samples_dir, task):
        part.unlink()
    return records


def evaluate(
    model: str,
    model_args: Mapping[str, Any] | None = None,
    *,
    out: str | os.PathLike[str],
    suite: str | None = None,
    tasks: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    save_videos: int = 0,
    progress: bool = True,
    console: Any = None,
    judge: str | None = None,
    judge_args: Mapping[str, Any] | None = None,
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
        progress: show a progress bar per task.
        judge: a judge kind (``panbench.judges``) for tasks scored by a judge; tasks that need
            one are refused up front without it.
        judge_args: the judge's options (``--judge-args k=v,...``).

    Returns:
        The results dict written to ``results.json`` (on rank 0; other ranks get ``{}``).

    Raises:
        ContractError: the adapter broke its contract; finished episodes stay on disk, no
            results.json is written.
        ConfigError: a task needs a judge and none was given (checked before anything runs).
        JudgementsPending: a human judge has clips to score; finished episodes stay on disk,
            the judging sheet is written, no results.json is written.
    """
    from panbench.envs import make as make_env
    from panbench.models.registry import load_model
    from panbench.protocols import PROTOCOLS
    from panbench.protocols.base import ModelRunner

    if batch_size < 1:
        raise ConfigError(f"Expected --batch-size >= 1, but got {batch_size}.")
    out = Path(out)
    suite_info, specs = _resolve_tasks(suite, tasks, seed, limit)
    envs: dict[str, Any] = {}
    protocols: dict[str, Any] = {}
    for task in specs:
        envs[task.name] = None
        if task.env is not None:  # a task on a data source has no env
            envs[task.name] = make_env(
                task.env.name, resolution=task.env.resolution, **dict(task.env.kwargs)
            )
        protocols[task.name] = PROTOCOLS.get(task.protocol)(task, envs[task.name])
    needing = [p for p in protocols.values() if p.requires_judge()]
    judge_obj = _make_judge(judge, judge_args, needing)
    dist = Dist.from_env()
    if judge == "human" and dist.world_size > 1:
        raise ConfigError("The human judge runs in one process; run without torchrun.")
    wm = load_model(model, model_args).to(device)
    config: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "model_args": dict(model_args or {}),
        "suite": suite_info,
        "tasks": {t.name: t.hash for t in specs},
        "limit": limit,
        "seed": seed,
    }
    if judge_obj is not None:
        # Who judges is part of the run (a resume may not switch judges); a human judge's
        # scores file may change between resumes, so only kind, model and endpoint count.
        prov = judge_obj.provenance()
        config["judge"] = {k: prov.get(k) for k in ("kind", "model", "endpoint")}
    run_config = sanitize(config)
    samples_dir = out / "samples"
    if dist.is_main:
        samples_dir.mkdir(parents=True, exist_ok=True)
        _check_run_file(out, run_config)
        atomic_write_json(out / RUN_FILE, run_config)
    dist.barrier()

    started = time.perf_counter()
    task_results: dict[str, Any] = {}
    pending: dict[str, int] = {}
    for task in specs:
        t0 = time.perf_counter()
        protocol = protocols[task.name]
        protocol.judge = judge_obj
        runner = ModelRunner(wm, envs[task.name], task.resolution)
        n = _task_count(task, limit)
        mine = [i for i in range(n) if i % dist.world_size == dist.rank]
        done = _done_indices(samples_dir, task.name)
        todo = [i for i in mine if i not in done]
        part = samples_dir / f"{task.name}.part-{dist.rank}.jsonl"
        error: Exception | None = None
        try:
            with _progress(progress and dist.is_main, task.name, len(mine), console) as advance:
                advance(len(mine) - len(todo))
                for start in range(0, len(todo), batch_size):
                    batch = [protocol.episode(i) for i in todo[start : start + batch_size]]
                    records = protocol.run_batch(runner, batch)
                    if len(records) != len(batch):
                        raise DataError(
                            f"Protocol {task.protocol!r} returned {len(records)} records for "
                            f"{len(batch)} episodes."
                        )
                    # Keys starting with "_" (e.g. predicted frames for --save-videos) are not data.
                    extras = [
                        {k: r.pop(k) for k in [k for k in r if k.startswith("_")]} for r in records
                    ]
                    # An episode whose judgement is pending (human judge) is not finished: it is
                    # not written, so a rerun with the scores runs it again.
                    full = [
                        {
                            "index": e.index,
                            "episode_id": e.episode_id,
                            "hash": e.hash,
                            "seed": e.seed,
                            **r,
                        }
                        for e, r, x in zip(batch, records, extras, strict=True)
                        if not x.get("_pending")
                    ]
                    waiting = len(records) - len(full)
                    if waiting:
                        pending[task.name] = pending.get(task.name, 0) + waiting
                    _append_records(part, full)
                    if save_videos:  # every rank saves its own episodes' videos
                        _save_videos(out, task.name, batch, extras, save_videos)
                    advance(len(batch))
            if save_videos:
                # Episodes finished before an interruption have records but maybe no video:
                # run them again for the video only (rollouts are deterministic, the records on
                # disk stay as they are).
                missing = [
                    i
                    for i in mine
                    if i < save_videos
                    and i in done
                    and not (out / "videos" / task.name / f"{i:05d}.mp4").exists()
                ]
                for start in range(0, len(missing), batch_size):
                    batch = [protocol.episode(i) for i in missing[start : start + batch_size]]
                    records = protocol.run_batch(runner, batch)
                    extras = [{k: v for k, v in r.items() if k.startswith("_")} for r in records]
                    _save_videos(out, task.name, batch, extras, save_videos)
        except Exception as err:  # settled below: every rank stops, none waits at a barrier
            error = err
        dist.settle(error)
        if pending.get(task.name):
            continue  # merged on the rerun that brings the missing judgements
        error = None
        try:
            if dist.is_main:
                recs = _merge_task(samples_dir, task.name, n)
                task_results[task.name] = _task_entry(task, protocol, recs, n, limit)
                task_results[task.name]["timing"] = {
                    "seconds": round(time.perf_counter() - t0, 3),
                    "model": runner.stats.to_dict(),
                }
                task_results[task.name].update(protocol.extra_results())
        except Exception as err:
            error = err
        dist.settle(error)

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
    )
    atomic_write_json(out / "results.json", results)
    return results


def _task_entry(
    task: Any, protocol: Any, records: list[dict[str, Any]], n: int, limit: int | None
) -> dict[str, Any]:
    from panbench.metrics.registry import get_metric

    infos = {m: get_metric(m) for m in task.metrics}
    skipped = dict(getattr(protocol, "skipped", {}))
    hib = {
        m: info.higher_is_better
        for m, info in infos.items()
        if m not in skipped and not info.set_level
    }
    metrics = aggregate_records(records, hib)
    metrics.update(protocol.set_metrics(records))
    metrics = {m: metrics[m] for m in task.metrics if m in metrics}  # the task's order
    means = {m: v["value"] for m, v in metrics.items()}
    headline = protocol.headline(means) if task.headline in means else None
    if headline is not None and not math.isfinite(headline):
        headline = None  # "no score" (e.g. an unbounded metric): left out of the suite mean
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
            names = ", ".join(p.task.name for p in needing)
            raise ConfigError(
                f"Task(s) {names} are scored by a judge, but no judge was given. Pass "
                "--judge openai-compatible --judge-args base_url=http://127.0.0.1:8000/v1,"
                "model=<vlm> (any OpenAI-compatible server with image input), or --judge human "
                "--judge-args sheet=<folder> (an HTML judging sheet); or leave these tasks out "
                "(e.g. --suite <folder>/wr-arena-judge-free.yaml). See docs/wr-arena.md."
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
) -> dict[str, Any]:
    env_info = environment_info()
    described = dict(wm.describe())
    scores = [
        t["headline"]["score"] for t in task_results.values() if t["headline"]["score"] is not None
    ]
    return sanitize(
        {
            "schema_version": SCHEMA_VERSION,
            "panbench_version": env_info.pop("panbench_version"),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git": env_info.pop("git"),
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


class _progress:
    """A rich progress bar for one task (a no-op when disabled)."""

    def __init__(self, enabled: bool, name: str, total: int, console: Any) -> None:
        self.enabled, self.name, self.total, self.console = enabled, name, total, console
        self._bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda k: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._bar.start()
        tid = self._bar.add_task(self.name, total=self.total)
        return lambda k: self._bar.advance(tid, k)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _save_videos(
    out: Path, task: str, episodes: Sequence[Any], records: Sequence[Mapping[str, Any]], k: int
) -> None:
    """Writes predicted | true side-by-side mp4s for episodes with index < k (if the protocol kept them)."""
    from panbench.data.videos import write_video

    folder = out / "videos" / task
    for ep, rec in zip(episodes, records, strict=True):
        pred = rec.get("_frames")
        if ep.index >= k or pred is None:
            continue
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        truth = ep.frames[: len(pred)]
        # Tasks on imported images have no true future: their videos show the prediction only.
        side = np.concatenate([pred, truth], axis=2) if len(truth) == len(pred) else pred
        write_video(folder / f"{ep.index:05d}.mp4", side)
