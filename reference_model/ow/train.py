"""Training loop of the open-weights recipe: stage 1 (decoder) and stage 2 (joint), FSDP2-ready.

``panbench train --config <recipe: open-weights YAML> --out DIR`` lands here. One run is one
stage (``train.stage``); stage 2 starts from stage 1's exported model through
``train.init_from``. Each run:

1. builds :class:`~reference_model.ow.model.PanOWModel` (seeded), loads ``init_from``;
2. makes sure the feature cache exists (:mod:`reference_model.ow.cache`; rank 0 builds it, on
   ``env`` data after generating the episodes into ``<cache_dir>/episodes``), then every rank
   reads it;
3. freezes everything but the stage's parameters (:meth:`PanOWModel.trainable_parameters`),
   enables activation checkpointing, and shards with FSDP2 (``fully_shard`` on every transformer
   block named by the models' ``_no_split_modules``, then the root) when ``train.fsdp`` is set,
   or wraps in DDP when several processes run without it;
4. trains with AdamW, linear warm-up then cosine decay, gradient-norm clipping and bf16 autocast.

Every random draw of step s (the windows, the decoder's noise) comes from generators seeded by
(seed, s, rank), so a run's data position is its step count: ``--resume`` continues exactly (on
CPU, N steps straight and N/2 + resume + N/2 give identical weights; tested).

Distributed: under ``torchrun`` (``env://`` rendezvous: ``MASTER_ADDR``/``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; multi-node works the same way) with NCCL on CUDA, gloo
on CPU. A single process with ``train.fsdp`` gets a local one-process group.

Run folder::

    <out>/checkpoint/   model/ (save_pretrained of the current weights), optimizer-rankNNNNN.safetensors
                        (each rank's shard of the AdamW moments), state.json (step, world size,
                        scheduler, AdamW step counts, torch RNG)
    <out>/model/        the exported model (what ``--model-args path=`` takes)
    <out>/cache/        the feature cache (unless ``train.cache_dir`` points elsewhere)
    <out>/log.csv       step, stage, loss, lr, grad_norm, seconds

Resuming needs the same world size (the optimizer shards are per rank).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from panbench.errors import ConfigError, DataError
from panbench.progress import step_timing
from reference_model.common.training import (
    CsvLog,
    barrier,
    batch_seed,
    check_fresh_out,
    lr_lambda,
    setup_distributed,
    swap_dir,
    training_record,
)
from reference_model.ow.cache import CacheSettings, FeatureCache, build_cache
from reference_model.ow.config import OWConfig, load_ow_config
from reference_model.ow.model import PanOWModel

__all__ = ["LOG_COLUMNS", "OPTIMIZER_FILE", "ensure_cache", "shard_model", "train"]

LOG_COLUMNS = ("step", "stage", "loss", "lr", "grad_norm", "seconds")
OPTIMIZER_FILE = "optimizer-rank{rank:05d}.safetensors"
_WINDOW_SALT, _NOISE_SALT = 11, 12


# ------------------------------------------------------------------------------- distributed
def shard_model(model: nn.Module, bf16_params: bool = False) -> list[str]:
    """Applies FSDP2 to ``model``: every transformer block, then the root.

    The blocks are the modules whose class the submodels name in ``_no_split_modules``
    (diffusers' ``WanTransformerBlock``, transformers' ``Qwen2DecoderLayer``, the Qwen2.5-VL
    vision blocks, umT5's ``UMT5Block``), so each is all-gathered only while it runs.

    Args:
        model: the model, already on its device, inside an initialised process group.
        bf16_params: compute in bfloat16 (``MixedPrecisionPolicy(param_dtype=bf16,
            reduce_dtype=fp32)``); master weights stay in their dtype.

    Returns:
        The block class names that were sharded one unit each.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or ())
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if bf16_params
        else MixedPrecisionPolicy()
    )
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    for block in blocks:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return sorted({type(b).__name__ for b in blocks})


# ------------------------------------------------------------------------------- data
def ensure_cache(
    cfg: OWConfig, out: Path, model: PanOWModel, rank: int, say: Any = print
) -> FeatureCache:
    """The run's feature cache: built (or resumed) by rank 0, then opened by every rank.

    Raises:
        DataError: the cache folder holds a cache of other encoders, settings or episodes.
    """
    from panbench.data import generate_episodes

    d, t = cfg.data, cfg.train
    root = Path(t.cache_dir) if t.cache_dir else out / "cache"
    features = root / "features"
    if d.source == "env":
        episodes = root / "episodes"
    else:
        assert d.path is not None
        episodes = Path(d.path)
    settings = CacheSettings(
        resolution=cfg.model.resolution,
        frames_per_action=d.frames_per_action,
        pixel_frames=model.pixel_frames_per_chunk,
        chunks_per_window=d.chunks_per_window,
        window_stride=d.stride,
        dtype=t.cache_dtype,
    )
    fingerprint = model.feature_fingerprint()
    if rank == 0:
        if d.source == "env" and not (episodes / "index.json").is_file():
            say(f"generating {d.episodes} {d.env} episodes of {d.length} frames into {episodes}")
            generate_episodes(
                d.env,
                d.episodes,
                d.length,
                t.seed,
                episodes,
                resolution=cfg.model.resolution,
                env_kwargs={k: v for k, v in d.env_kwargs.items() if k != "resolution"},
            )
        build_cache(
            features,
            episodes,
            settings,
            fingerprint,
            model.encode_video,
            model.encode_text,
            shard_size=t.cache_shard_size,
            progress=say,
        )
    barrier()
    from reference_model.ow.cache import cache_key

    return FeatureCache(features, cache_key(fingerprint, settings, episodes / "index.json"))


def _batch(cache: FeatureCache, cfg: OWConfig, step: int, rank: int) -> dict[str, Any]:
    """Batch ``step`` of ``rank``: windows drawn with replacement from (seed, step, rank)."""
    rng = np.random.default_rng(batch_seed(cfg.train.seed, step, rank, _WINDOW_SALT))
    picks = rng.integers(len(cache), size=cfg.train.batch_size).tolist()
    return cache.batch(picks, text_len=cfg.model.decoder.text_len)


# ------------------------------------------------------------------------------- checkpoints
def _full_state(model: nn.Module, sharded: bool) -> dict[str, torch.Tensor]:
    """Every tensor of ``model``, gathered (FSDP2) onto CPU; empty on ranks other than 0."""
    if not sharded:
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a (possibly DTensor) tensor, detached, on CPU."""
    from torch.distributed.tensor import DTensor

    if isinstance(t, DTensor):
        t = t.to_local()
    return t.detach().cpu().contiguous()


def _save_checkpoint(
    out: Path,
    model: PanOWModel,
    runner: nn.Module,
    params: dict[str, nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    step: int,
    rank: int,
    world: int,
    sharded: bool,
    training: dict[str, Any],
) -> None:
    from safetensors.torch import save

    from panbench.io import atomic_write_bytes, atomic_write_json

    full = _full_state(runner, sharded)  # collective under FSDP: every rank calls it
    tmp = out / "checkpoint.tmp"
    if rank == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    barrier()
    moments, steps = {}, {}
    for name, p in params.items():
        st = optimizer.state.get(p, {})
        if st:
            moments[f"exp_avg.{name}"] = _local(st["exp_avg"])
            moments[f"exp_avg_sq.{name}"] = _local(st["exp_avg_sq"])
            steps[name] = float(st["step"])
    atomic_write_bytes(tmp / OPTIMIZER_FILE.format(rank=rank), save(moments))
    barrier()
    if rank == 0:
        meta = {**training, "step": step}
        model.save_pretrained(tmp / "model", training=meta, state_dict=full)
        state = {
            "step": step,
            "world_size": world,
            "scheduler": scheduler.state_dict(),
            "adam_steps": steps,
            "torch_rng": torch.get_rng_state().tolist(),
        }
        atomic_write_json(tmp / "state.json", state, indent=None)
        swap_dir(tmp, out / "checkpoint")
        export = out / "model.tmp"
        if export.exists():
            shutil.rmtree(export)
        shutil.copytree(out / "checkpoint" / "model", export, copy_function=_link_or_copy)
        swap_dir(export, out / "model")
    barrier()


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-links (no second copy of a 30 GB file) and falls back to copying."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _read_state(out: Path, world: int) -> dict[str, Any]:
    ckpt = out / "checkpoint"
    file = ckpt / "state.json"
    if not file.is_file():
        raise DataError(
            f"--resume: no checkpoint in {out} (looked for {file}); run without --resume to "
            "start training."
        )
    state: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    if int(state["world_size"]) != world:
        raise ConfigError(
            f"--resume: {ckpt} was written by {state['world_size']} process(es), but this run has "
            f"{world}; resume with the same world size (the optimizer state is sharded per rank)."
        )
    return state


def _load_optimizer(
    out: Path,
    state: dict[str, Any],
    params: dict[str, nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    rank: int,
) -> None:
    from safetensors.torch import load_file
    from torch.distributed.tensor import DTensor

    file = out / "checkpoint" / OPTIMIZER_FILE.format(rank=rank)
    if not file.is_file():
        raise DataError(f"--resume: {file} is missing.")
    moments = load_file(str(file))
    for name, p in params.items():
        if name not in state["adam_steps"]:
            continue
        st: dict[str, Any] = {"step": torch.tensor(state["adam_steps"][name])}
        for key in ("exp_avg", "exp_avg_sq"):
            local = moments[f"{key}.{name}"]
            if isinstance(p, DTensor):
                st[key] = DTensor.from_local(
                    local.to(p.device),
                    p.device_mesh,
                    p.placements,
                    shape=p.shape,
                    stride=p.stride(),
                )
            else:
                st[key] = local.to(p.device)
        optimizer.state[p] = st
    scheduler.load_state_dict(state["scheduler"])
    # The scheduler's state does not carry the optimizer's current learning rate: set it.
    for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
        group["lr"] = lr
    torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))


# ------------------------------------------------------------------------------- train
@dataclasses.dataclass
class _Run:
    """What every step of an open-weights run reads: config, folder, process, model, optimizer."""

    cfg: OWConfig
    out: Path
    rank: int
    world: int
    dev: torch.device
    model: PanOWModel
    runner: nn.Module
    sharded: bool
    cache: FeatureCache
    params: dict[str, nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    stop: int
    log: CsvLog | None
    training: dict[str, Any]
    say: Any
    first: int = 0  # the step this process started (or resumed) from: the ETA's origin


def train(
    config: str | Path,
    out: str | Path,
    *,
    max_steps: int | None = None,
    resume: bool = False,
    device: str | None = None,
    command: str | None = None,
    console: Any = None,
) -> Path:
    """Trains one stage of the open-weights recipe; returns the exported model folder.

    ``panbench train`` reaches this through :func:`reference_model.recipes.train`, which picks
    the recipe from the config's ``recipe:`` value.

    Args:
        config: an ``recipe: open-weights`` YAML (``reference_model/configs/ow-*.yaml``).
        out: the run folder (see the module docstring).
        max_steps: stop after this step; the schedule still follows ``train.steps``, so a
            stopped run resumes onto the same trajectory.
        resume: continue from ``<out>/checkpoint``.
        device: ``cpu``, ``cuda``, ... (default: CUDA when available).
        command: the command line recorded in the checkpoints' ``config.json``.
        console: a rich console for progress lines (None: print).

    Raises:
        ConfigError: bad config; ``out`` holds a run and ``resume`` is False; ``init_from``
            holds a model of another config; a resume with another world size.
        DataError: ``resume`` without a checkpoint; a stale or corrupt feature cache.
    """
    cfg = load_ow_config(config)
    t = cfg.train
    out = Path(out)
    check_fresh_out(out, resume)
    run, start = _start(cfg, config, out, max_steps, resume, device, command, console)
    autocast = (
        torch.autocast(run.dev.type, dtype=torch.bfloat16) if t.bf16 else contextlib.nullcontext()
    )
    run.model.train()
    tic = time.perf_counter()
    for step in range(start, run.stop):
        batch = _batch(run.cache, cfg, step, run.rank)
        gen = torch.Generator().manual_seed(batch_seed(t.seed, step, run.rank, _NOISE_SALT))
        with autocast:
            losses = run.runner(t.stage, batch, gen)
        losses["loss"].backward()
        grad_norm = _clip(list(run.params.values()), t.grad_clip)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        _report(run, losses, grad_norm, step + 1, tic)
    barrier()
    return out / "model"


def _start(
    cfg: OWConfig,
    config: str | Path,
    out: Path,
    max_steps: int | None,
    resume: bool,
    device: str | None,
    command: str | None,
    console: Any,
) -> tuple[_Run, int]:
    """Builds the run: model (new or resumed), feature cache, sharding, optimizer, log."""
    t = cfg.train
    rank, world, dev = setup_distributed(device, t.fsdp)
    say = console.print if console is not None else print
    if rank != 0:
        say = _quiet
    if t.num_threads > 0:
        torch.set_num_threads(t.num_threads)
    stop = t.steps if max_steps is None else min(t.steps, int(max_steps))
    state = _read_state(out, world) if resume else None
    start = 0 if state is None else int(state["step"])
    model = _build_model(cfg, out, resume)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    model.to(dev)  # the frozen encoders fill the cache on the training device
    cache = ensure_cache(cfg, out, model, rank, say)
    params_by_name = model.set_stage(t.stage)
    if t.activation_checkpointing:
        model.enable_activation_checkpointing()
    runner = _distribute(model, cfg, world, dev, say)
    # fully_shard swaps in DTensor parameters: look them up again by name.
    named = dict(model.named_parameters())
    params = {n: named[n] for n in params_by_name}
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=t.lr, weight_decay=t.weight_decay, betas=(0.9, 0.999)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(t.warmup, t.steps, t.min_lr_ratio)
    )
    if state is not None:
        _load_optimizer(out, state, params, optimizer, scheduler, rank)
    log = CsvLog(out / "log.csv", start if resume else None, LOG_COLUMNS) if rank == 0 else None
    training = training_record(config, cfg.to_dict(), command, stage=t.stage, total_steps=t.steps)
    run = _Run(
        cfg, out, rank, world, dev, model, runner, t.fsdp, cache, params, optimizer, scheduler,
        stop, log, training, say, start,
    )  # fmt: skip
    counts = model.num_parameters()
    trained = sum(p.numel() for p in params.values())
    say(
        f"stage {t.stage} of {Path(config).name}: {counts['total']:,} parameters "
        f"(f {counts['backbone']:,}, g {counts['decoder']:,}), {trained:,} trained; "
        f"{len(cache)} cached windows; steps {start}->{stop} of {t.steps} on {dev} x{world}"
    )
    return run, start


def _build_model(cfg: OWConfig, out: Path, resume: bool) -> PanOWModel:
    """The checkpoint's model on ``resume`` (same config required), else a new seeded one."""
    t = cfg.train
    if resume:
        model = PanOWModel.from_pretrained(out / "checkpoint" / "model")
        if dataclasses.asdict(model.config) != dataclasses.asdict(cfg.model):
            raise ConfigError(
                f"--resume: the model config in {out / 'checkpoint' / 'model'} differs from the "
                "training config given; resume with the config the run started with."
            )
        return model
    torch.manual_seed(t.seed)
    model = PanOWModel(cfg.model)
    if t.init_from:
        model.load_weights(t.init_from)
    return model


def _distribute(
    model: PanOWModel, cfg: OWConfig, world: int, dev: torch.device, say: Any
) -> nn.Module:
    """The module a step calls: FSDP2-sharded in place, DDP-wrapped, or the model itself."""
    t = cfg.train
    if t.fsdp:
        blocks = shard_model(model, bf16_params=t.bf16 and dev.type == "cuda")
        say(f"FSDP2 over {world} process(es): one unit per {', '.join(blocks) or '(none)'}")
        return model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    return model


def _report(
    run: _Run, losses: dict[str, torch.Tensor], grad_norm: float, done: int, tic: float
) -> None:
    """After step ``done``: the log row (rank 0) and, when due, the checkpoint (every rank)."""
    t = run.cfg.train
    stage = f"stage{t.stage}"
    if run.log is not None and (done % t.log_every == 0 or done == run.stop):
        row: dict[str, Any] = {
            "step": done,
            "stage": stage,
            "loss": float(losses["loss"].detach()),
            "lr": run.scheduler.get_last_lr()[0],
            "grad_norm": grad_norm,
            "seconds": round(time.perf_counter() - tic, 2),
        }
        run.log.write(row)
        timing = step_timing(done, run.first, run.stop, row["seconds"])
        run.say(
            f"step {done}/{t.steps} ({stage}) loss {row['loss']:.4f} lr {row['lr']:.2e}, {timing}"
        )
    if done % t.checkpoint_every == 0 or done == run.stop:
        _save_checkpoint(
            run.out,
            run.model,
            run.runner,
            run.params,
            run.optimizer,
            run.scheduler,
            done,
            run.rank,
            run.world,
            run.sharded,
            run.training,
        )


def _clip(params: list[nn.Parameter], max_norm: float) -> float:
    """Clips the global gradient norm (DTensor-aware) and returns the norm before clipping."""
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.nn.utils.clip_grad_norm_(grads, max_norm if max_norm > 0 else float("inf"))
    full = getattr(norm, "full_tensor", None)
    return float(full() if callable(full) else norm)


def _quiet(*_: Any, **__: Any) -> None:
    """Progress printer of ranks other than 0."""
