"""The ``panbench`` command: parses arguments and calls library functions; no logic lives here.

Each command group has its own ``_add_<group>`` (parser) and ``_cmd_<group>_*`` (handler)
functions; heavy modules are imported inside handlers so ``panbench --version`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from panbench import __version__
from panbench.errors import PanbenchError
from panbench.options import parse_kv


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for i, col in enumerate(columns):
        # Names are what people copy into task files: never folded, other columns wrap instead.
        table.add_column(col, no_wrap=i == 0)
    for row in rows:
        table.add_row(*[str(x) for x in row])
    _console().print(table)


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: the CPUs this process may use and that are idle; "
        "PANBENCH_THREADS and OMP_NUM_THREADS are respected)",
    )


# ============================================================================================ ls
def _add_ls(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list registered things")
    p.add_argument(
        "what",
        choices=["envs", "tasks", "suites", "models", "metrics", "protocols"],
        help="what to list",
    )
    p.set_defaults(func=_cmd_ls)


def _cmd_ls(args: argparse.Namespace) -> int:
    rows: list[Any]
    if args.what == "envs":
        from panbench.envs import describe

        _table("envs", ["name", "description"], describe())
    elif args.what in ("tasks", "suites"):
        from panbench.suite import list_suites, list_tasks

        rows = list_tasks() if args.what == "tasks" else list_suites()
        # Descriptions may run over several lines; the listing shows the first.
        rows = [(name, version, (desc.splitlines() or [""])[0]) for name, version, desc in rows]
        _table(args.what, ["name", "version", "description"], rows)
    elif args.what == "models":
        from panbench.models import MODELS

        rows = []
        for name in MODELS.names():
            try:
                doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
                rows.append((name, doc[0] if doc else ""))
            except ImportError as err:  # a plugin whose dependencies are missing
                rows.append((name, f"(cannot import: {err})"))
        _table("models", ["name", "description"], rows)
    elif args.what == "metrics":
        _ls_metrics()
    elif args.what == "protocols":
        from panbench.protocols import PROTOCOLS

        rows = []
        for name in PROTOCOLS.names():
            cls = PROTOCOLS.get(name)
            module = sys.modules[cls.__module__]
            module_doc = (module.__doc__ or "").strip().splitlines()
            options = ", ".join(f"{o.name}={o.default!r} ({o.expected()})" for o in cls.options)
            rows.append(
                (
                    name,
                    ", ".join(cls.sources),
                    options,
                    ", ".join(cls.metrics),
                    module_doc[0] if module_doc else "",
                )
            )
        _table("protocols", ["name", "sources", "options", "metrics", "description"], rows)
    return 0


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _ls_metrics() -> None:
    """Prints the metric catalogue: every metric any protocol reports."""
    from panbench.metrics.registry import METRICS

    rows = [
        (
            m.name,
            "↑" if m.higher_is_better else "↓",
            m.level,
            f"[{_bound(m.range[0])}, {_bound(m.range[1])}]",
            m.unit,
            "yes" if m.needs_weights else "",
            m.description,
        )
        for m in METRICS
    ]
    _table("metrics", ["name", "better", "level", "range", "unit", "weights", "description"], rows)


# ============================================================================================ tasks
def _add_tasks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="check task and suite specs")
    tsub = p.add_subparsers(dest="tasks_cmd", required=True, metavar="{validate,import}")
    v = tsub.add_parser("validate", help="validate task/suite YAML files; exit 1 on any problem")
    v.add_argument(
        "path", nargs="?", type=Path, default=None, help="a YAML file or folder (default: shipped)"
    )
    v.set_defaults(func=_cmd_tasks_validate)
    _add_tasks_import(tsub)


def _cmd_tasks_validate(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from panbench.suite import check_path, shipped_tasks_dir

    path = args.path if args.path is not None else shipped_tasks_dir()
    report = check_path(path)
    console = _console()
    for problem in report.problems:
        console.print(escape(str(problem)), soft_wrap=True)
    if report.problems:
        bad = len({p.file for p in report.problems})
        console.print(f"{len(report.problems)} problem(s) in {bad} of {report.files} file(s)")
        return 1
    if not report.files:
        console.print(f"no task or suite files under {path}")
        return 0
    rows = [(t.name, t.version, t.protocol, t.hash[:12]) for t in report.tasks]
    _table("tasks", ["task", "version", "protocol", "hash"], rows)
    if report.suites:
        suite_rows = [(s.name, s.version, len(s.tasks), s.hash[:12]) for s in report.suites]
        _table("suites", ["suite", "version", "tasks", "hash"], suite_rows)
    console.print(f"{report.files} file(s) valid")
    return 0


# ============================================================================================ tasks import
def _add_tasks_import(tsub: argparse._SubParsersAction) -> None:
    im = tsub.add_parser("import", help="write panbench tasks from a benchmark's local checkout")
    from panbench.data.recorded_cli import RECORDED_IMPORTS, add_recorded_import_args

    im.add_argument("source", choices=["wr-arena", *RECORDED_IMPORTS], help="what to import")
    im.add_argument(
        "--root", type=Path, required=True, help="the checkout or data folder (lerobot: or Hub id)"
    )
    im.add_argument("--out", type=Path, required=True, help="folder for task YAMLs + manifests")
    im.add_argument("--only", default="", help="comma-separated subset of the tasks (wr-arena)")
    add_recorded_import_args(im)
    im.set_defaults(func=_cmd_tasks_import)


def _cmd_tasks_import(args: argparse.Namespace) -> int:
    if args.source != "wr-arena":
        from panbench.data.recorded_cli import run_recorded_import

        return run_recorded_import(args, _console(stderr=False))
    from panbench.data.wr_arena import import_wr_arena

    only = [t for t in args.only.split(",") if t.strip()] or None
    report = import_wr_arena(args.root, args.out, tasks=only)
    columns = ["task", "listed", "usable", "missing images", "upstream file"]
    _table("imported", columns, report.rows())
    console = _console()
    for t in report.tasks:
        if t.missing:
            console.print(
                f"{t.task}: {t.missing} of {t.listed} samples skipped for a missing image "
                f"(listed under 'skipped' in {t.manifest})"
            )
        if t.yaml is None:
            console.print(f"{t.task}: no usable sample, no task written")
    for suite in report.suites:
        console.print(f"suite: {suite}")
    console.print(f"tasks written to {args.out} (data stays in {report.root})")
    return 0


# ============================================================================================ data
def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate or import episodes on disk")
    dsub = p.add_subparsers(dest="data_cmd", required=True, metavar="{generate,import-videos,info}")

    g = dsub.add_parser("generate", help="roll out an env with random actions and write episodes")
    g.add_argument("--env", required=True, help="env name (see `panbench ls envs`)")
    g.add_argument("--episodes", type=int, required=True, help="number of episodes")
    g.add_argument("--length", type=int, required=True, help="frames per episode (incl. the first)")
    g.add_argument(
        "--seed", type=int, default=0, help="base seed (episode i uses a seed derived from it)"
    )
    g.add_argument(
        "--out", type=Path, required=True, help="output folder (must be empty or absent)"
    )
    g.add_argument("--resolution", type=int, default=64, help="frame side in pixels")
    g.add_argument("--shard-size", type=int, default=64, help="episodes per shard file")
    g.add_argument(
        "--env-args", default="", help="env options as k=v,k=v (e.g. interventions=true)"
    )
    g.set_defaults(func=_cmd_data_generate)

    iv = dsub.add_parser("import-videos", help="turn a folder of mp4 files into episodes")
    iv.add_argument("src", type=Path, help="folder with *.mp4 (and optionally actions.jsonl)")
    iv.add_argument(
        "--out", type=Path, required=True, help="output folder (must be empty or absent)"
    )
    iv.add_argument(
        "--resolution", type=int, default=None, help="resize frames to this square side"
    )
    iv.add_argument("--max-frames", type=int, default=None, help="keep at most this many frames")
    iv.set_defaults(func=_cmd_data_import_videos)

    info = dsub.add_parser("info", help="summarise and verify an episode folder")
    info.add_argument("path", type=Path)
    info.set_defaults(func=_cmd_data_info)


def _cmd_data_generate(args: argparse.Namespace) -> int:
    from panbench.data.generate import generate_episodes

    path = generate_episodes(
        env=args.env,
        episodes=args.episodes,
        length=args.length,
        seed=args.seed,
        out=args.out,
        resolution=args.resolution,
        shard_size=args.shard_size,
        env_kwargs=parse_kv(args.env_args),
        progress=True,
    )
    _console().print(f"wrote {args.episodes} episodes to {path}")
    return 0


def _cmd_data_import_videos(args: argparse.Namespace) -> int:
    from panbench.data.videos import import_videos

    path = import_videos(
        args.src, args.out, resolution=args.resolution, max_frames=args.max_frames, progress=True
    )
    _console().print(f"imported videos into {path}")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from panbench.data.format import read_index, verify_dataset

    index = read_index(args.path)
    verify_dataset(args.path)
    _console().print(index.summary())
    return 0


# ============================================================================================ evaluate
def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="run a world model over a suite or tasks and score it")
    p.add_argument("--model", required=True, help="registered model name or module:Class")
    p.add_argument("--model-args", default="", help="adapter options as k=v,k=v")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--suite", help="suite name or YAML path (see `panbench ls suites`)")
    group.add_argument("--tasks", help="comma-separated task names or YAML paths")
    p.add_argument("--out", type=Path, required=True, help="results folder (rerun to resume)")
    p.add_argument("--limit", type=int, default=None, help="at most N episodes per task")
    p.add_argument("--seed", type=int, default=None, help="replace every task's episode seed")
    p.add_argument(
        "--batch-size", type=int, default=16, help="episodes per model call (default: 16)"
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--save-videos", type=int, default=0, metavar="K", help="save K videos per task")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--judge", default=None, help="judge kind for judge-scored tasks (WR-Arena)")
    p.add_argument("--judge-args", default="", help="judge options as k=v,k=v")
    p.add_argument(
        "--model-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="refuse an adapter whose reset/step/clone runs longer (default: no limit)",
    )
    _add_threads(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from panbench.errors import ActionSpaceError
    from panbench.harness import JudgementsPending, evaluate
    from panbench.report import print_summary

    console = _console()
    try:
        results = _run_evaluate(args, console, evaluate)
    except ActionSpaceError as err:  # unusable input: the model cannot take these actions
        from rich.markup import escape

        _console(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        return 2
    except JudgementsPending as waiting:
        from rich.markup import escape

        console.print(f"[bold yellow]pending:[/] {escape(str(waiting))}", soft_wrap=True)
        console.print(f"rerun: {escape(_rerun_with_scores(args))}", soft_wrap=True)
        return 3
    if results:
        print_summary(results, console=console)
        console.print(f"results written to {args.out / 'results.json'}")
    return 0


def _rerun_with_scores(args: argparse.Namespace) -> str:
    """The command line that resumes a run once the human judge's scores are exported."""
    import shlex

    argv = list(sys.argv[1:]) or ["evaluate"]
    judge_args = parse_kv(args.judge_args)
    judge_args.setdefault("scores", "<exported panbench-scores.json>")
    value = ",".join(f"{k}={v}" for k, v in judge_args.items())
    if "--judge-args" in argv:
        argv[argv.index("--judge-args") + 1] = value
    else:
        argv = [a for a in argv if not a.startswith("--judge-args=")] + ["--judge-args", value]
    return "panbench " + " ".join(shlex.quote(a) for a in argv)


def _run_evaluate(args: argparse.Namespace, console: Any, evaluate: Any) -> Any:
    return evaluate(
        args.model,
        parse_kv(args.model_args),
        out=args.out,
        suite=args.suite,
        tasks=[t for t in (args.tasks or "").split(",") if t] or None,
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        save_videos=args.save_videos,
        progress=not args.no_progress,
        console=console,
        judge=args.judge,
        judge_args=parse_kv(args.judge_args),
        model_timeout=args.model_timeout,
    )


# ============================================================================================ serve
def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over the wire protocol (score it with --model remote)",
        description="Serves any adapter so that `panbench evaluate --model remote --model-args "
        "url=http://HOST:PORT` scores it from another process or machine (docs/remote.md). "
        "Binds to loopback unless --host says otherwise; then a bearer token must be set in "
        "the environment variable PANBENCH_SERVE_TOKEN.",
    )
    p.add_argument("--model", required=True, help="registered model name or module:Class")
    p.add_argument("--model-args", default="", help="adapter options as k=v,k=v")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free one; default 8765)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument(
        "--max-request-mb", type=float, default=512, help="refuse larger requests (default 512)"
    )
    p.add_argument(
        "--max-states", type=int, default=100_000, help="model states held at once (default 1e5)"
    )
    p.add_argument(
        "--ready-file", type=Path, default=None, help="write the server's url here once it listens"
    )
    _add_threads(p)
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from panbench.serve.cli import run_serve

    return run_serve(args, parse_kv(args.model_args), _console(stderr=True))


# ============================================================================================ weights
def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="pinned pretrained weights: list, pull, verify, path")
    wsub = p.add_subparsers(dest="weights_cmd", required=True, metavar="{list,pull,verify,path}")

    ls = wsub.add_parser("list", help="registered files, their pins and cache status")
    ls.add_argument("--verify", action="store_true", help="also hash present files")
    ls.set_defaults(func=_cmd_weights_list)

    pl = wsub.add_parser("pull", help="download a file into the cache and verify it")
    pl.add_argument("name", help="weights name (see `panbench weights list`)")
    pl.add_argument("--force", action="store_true", help="download even if cached and valid")
    pl.set_defaults(func=_cmd_weights_pull)

    vf = wsub.add_parser("verify", help="check files against their pinned sha256")
    vf.add_argument("name", nargs="?", default=None, help="one name (default: every present file)")
    vf.set_defaults(func=_cmd_weights_verify)

    ph = wsub.add_parser("path", help="print the verified local path of a file")
    ph.add_argument("name", help="weights name")
    ph.set_defaults(func=_cmd_weights_path)


def _cmd_weights_list(args: argparse.Namespace) -> int:
    from panbench.report import WEIGHTS_COLUMNS, weights_rows
    from panbench.weights import describe, weights_dir

    rows = describe(verify_files=args.verify)
    _table("weights", WEIGHTS_COLUMNS, weights_rows(rows))
    console = _console()
    console.print(f"cache: {weights_dir()}", soft_wrap=True)
    missing = [r["name"] for r in rows if r["status"] == "missing"]
    if missing:
        console.print(f"get a missing file: panbench weights pull {missing[0]}", soft_wrap=True)
    return 0


def _cmd_weights_pull(args: argparse.Namespace) -> int:
    from panbench.weights import pull

    console = _console()
    path = pull(args.name, force=args.force, log=console.print)
    print(path)
    return 0


def _cmd_weights_verify(args: argparse.Namespace) -> int:
    from panbench.weights import WEIGHTS, WeightsError, describe, resolve

    names = (
        [args.name] if args.name else [r["name"] for r in describe() if r["status"] != "missing"]
    )
    if args.name is None and not names:
        _console().print("no weights files present; see `panbench weights list`")
        return 0
    failed = 0
    for name in names:
        WEIGHTS.get(name)  # unknown names fail with "Did you mean"
        try:
            _console().print(f"{name}: ok ({resolve(name)})")
        except WeightsError as err:
            failed += 1
            _console(stderr=True).print(f"[bold red]{name}: FAILED[/] {err}", soft_wrap=True)
    return 1 if failed else 0


def _cmd_weights_path(args: argparse.Namespace) -> int:
    from panbench.weights import resolve

    print(resolve(args.name))
    return 0


# ============================================================================================ demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a short offline demo on an embedded default")
    p.add_argument("--out", type=Path, default=Path("panbench-demo"), help="output folder")
    _add_threads(p)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from panbench.demo import run_demo

    run_demo(args.out, console=_console())
    return 0


# ============================================================================================ train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the PAN reference model (needs the `model` extra)")
    p.add_argument("--config", type=Path, required=True, help="reference_model/configs/<name>.yaml")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoint/, model/, log)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this global step")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    _add_threads(p)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    import shlex

    from panbench.models.pan_ref import train_reference_model

    # The command as typed, so a checkpoint's config.json says how it was made.
    parts = ["panbench", "train", "--config", str(args.config), "--out", str(args.out)]
    if args.max_steps is not None:
        parts += ["--max-steps", str(args.max_steps)]
    if args.resume:
        parts.append("--resume")
    if args.device:
        parts += ["--device", args.device]
    command = shlex.join(parts)
    from panbench.train_notes import warn_after, warn_before

    warn_before(args.config, args.max_steps, _console(stderr=True))
    model_dir = train_reference_model(
        args.config,
        args.out,
        max_steps=args.max_steps,
        resume=args.resume,
        device=args.device,
        command=command,
        console=_console(),
    )
    _console().print(f"model written to {model_dir}")
    warn_after(model_dir, _console(stderr=True))
    return 0


# ============================================================================================ leaderboards
def _add_leaderboard(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("submit", help="validate a results folder and add it to a leaderboard")
    s.add_argument("results", type=Path, help="results folder written by `panbench evaluate`")
    s.add_argument("--leaderboard", type=Path, required=True, help="leaderboard folder")
    s.add_argument("--name", default=None, help="submission name (default: the model name)")
    s.add_argument(
        "--replace",
        action="store_true",
        help="replace an earlier submission of the same model (or, under the same name, "
        "another checkpoint of it)",
    )
    s.set_defaults(func=_cmd_leaderboard_submit)

    p = sub.add_parser("leaderboard", help="create, verify and build leaderboards")
    lsub = p.add_subparsers(dest="leaderboard_cmd", required=True, metavar="{init,build,verify}")
    i = lsub.add_parser("init", help="create a leaderboard folder for a suite")
    i.add_argument("path", type=Path)
    i.add_argument("--suite", required=True, help="suite name or YAML path")
    i.add_argument("--no-partial", action="store_true", help="refuse runs made with --limit")
    i.set_defaults(func=_cmd_leaderboard_init)
    b = lsub.add_parser("build", help="re-verify submissions; write the md/csv/html and plots")
    b.add_argument("path", type=Path)
    b.set_defaults(func=_cmd_leaderboard_build)
    v = lsub.add_parser("verify", help="re-verify every stored submission; exit 1 on any problem")
    v.add_argument("path", type=Path)
    v.set_defaults(func=_cmd_leaderboard_verify)


def _cmd_leaderboard_submit(args: argparse.Namespace) -> int:
    from panbench.leaderboard import submit

    sub = submit(args.results, args.leaderboard, name=args.name, replace=args.replace)
    flag = " (partial: run with --limit)" if sub.partial else ""
    _console().print(f"accepted {sub.name}{flag}: {sub.path}", soft_wrap=True)
    _console().print(f"rebuild the tables with `panbench leaderboard build {args.leaderboard}`")
    return 0


def _cmd_leaderboard_init(args: argparse.Namespace) -> int:
    from panbench.leaderboard import CONFIG_FILE, init_leaderboard

    config = init_leaderboard(args.path, args.suite, accept_partial=not args.no_partial)
    _console().print(f"created {args.path / CONFIG_FILE} for suite {config.suite['name']}")
    return 0


def _cmd_leaderboard_build(args: argparse.Namespace) -> int:
    from panbench.leaderboard import build_leaderboard

    written = build_leaderboard(args.path)
    _console().print(f"wrote {len(written)} files; open {args.path / 'index.html'}")
    return 0


def _cmd_leaderboard_verify(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from panbench.leaderboard import load_submissions

    try:
        subs = load_submissions(args.path)
    except PanbenchError as err:  # verification failed: exit 1, as for weights verify
        _console(stderr=True).print(f"[bold red]FAILED:[/] {escape(str(err))}", soft_wrap=True)
        return 1
    _console().print(f"{len(subs)} submission(s) verified: {', '.join(s.name for s in subs)}")
    return 0


# ============================================================================================ compare
def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="paired comparison of two results folders; --gate exits 1 on a regression",
        description="Exit codes: 0 no headline regression (or no --gate), 1 a headline "
        "metric regressed (with --gate), 2 unusable input.",
    )
    p.add_argument("base", type=Path, help="the base results folder (e.g. the committed one)")
    p.add_argument("candidate", type=Path, help="the candidate results folder")
    p.add_argument("--gate", action="store_true", help="exit 1 when a headline metric regresses")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--min-effect",
        type=float,
        default=0.0,
        help="ignore differences this small, in the metric's units (default 0)",
    )
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument(
        "--correction",
        choices=["holm", "none"],
        default="holm",
        help="multiple-comparison correction over the headline metrics (default holm)",
    )
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from panbench.compare import compare_results, format_comparison

    try:
        result = compare_results(
            args.base,
            args.candidate,
            alpha=args.alpha,
            min_effect=args.min_effect,
            n_resamples=args.resamples,
            correction=args.correction,
        )
    except PanbenchError as err:  # unusable input is exit 2, apart from a regression's 1
        _console(stderr=True).print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
        return 2
    sys.stdout.write(format_comparison(result, args.format))
    return 1 if args.gate and not result.passed else 0


# ============================================================================================ plot
def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="comparison figures (PNG, SVG, PDF) from results folders")
    p.add_argument("results", type=Path, nargs="+", help="results folders of one suite")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--format", default="png,svg", help="comma-separated, of png (300 dpi), svg and pdf"
    )
    p.set_defaults(func=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from panbench.plots import load_runs, load_samples, plot_results

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    runs, samples = load_runs(args.results), load_samples(args.results)
    written = plot_results(runs, args.out, formats=formats, samples=samples)
    _console().print(f"wrote {len(written)} figures to {args.out}")
    return 0


# ============================================================================================ judges
def _add_judges(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judges", help="judges that score clips against a rubric")
    jsub = p.add_subparsers(dest="judges_cmd", required=True, metavar="{ls}")
    ls = jsub.add_parser("ls", help="list judge kinds and their options (k=v)")
    ls.set_defaults(func=_cmd_judges_ls)


def _cmd_judges_ls(args: argparse.Namespace) -> int:
    from panbench.judges import describe_judges

    rows = []
    for kind, doc, options in describe_judges():
        rows.append((kind, "", "", "", doc))
        for opt in options:
            default = "required" if opt.required else repr(opt.default)
            rows.append(("", opt.name, opt.type.__name__, default, opt.help))
    _table("judges (options are given as k=v)", ["kind", "option", "type", "default", "help"], rows)
    return 0


# ============================================================================================ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panbench",
        description="Evaluate world models on ground-truth environments.",
    )
    parser.add_argument("--version", action="version", version=f"panbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from panbench.report_cli import add_report

    for add in (
        _add_ls,
        _add_tasks,
        _add_data,
        _add_evaluate,
        _add_weights,
        _add_demo,
        _add_train,
        _add_leaderboard,
        _add_compare,
        _add_plot,
        add_report,
        _add_judges,
        _add_serve,
    ):
        add(sub)
    from panbench.cli_help import decorate

    return decorate(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; exit codes are listed in docs/errors.md (panbench.exitcodes)."""
    from panbench import exitcodes

    parser = build_parser()
    exitcodes.add_debug_flag(parser)
    args = parser.parse_args(argv)
    try:
        from panbench.preflight import check_args

        check_args(args)  # ranges, devices, output paths: before anything is written
        if hasattr(args, "threads"):  # commands that run torch: before torch is imported
            from panbench.threads import configure

            configure(args.threads)
        return int(args.func(args) or 0)
    except (PanbenchError, OSError) as err:
        debug = exitcodes.debug_requested(args)
        return exitcodes.report_failure(err, _console(stderr=True), debug=debug)
    except KeyboardInterrupt:
        hint = (
            "episodes finished so far are kept; rerun the same command to resume"
            if getattr(args, "command", None) == "evaluate"
            else "no partial output was left behind"
        )
        _console(stderr=True).print(f"interrupted: {hint}")
        return 130
    except Exception as err:  # a bug: reported as one, with the traceback under --debug
        debug = exitcodes.debug_requested(args)
        return exitcodes.report_failure(err, _console(stderr=True), debug=debug)


if __name__ == "__main__":
    sys.exit(main())
