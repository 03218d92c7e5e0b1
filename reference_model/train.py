"""The classic recipe's training loop: two stages, checkpoints that resume bit-exactly on CPU.

Stage 1 (``ae_steps``) trains the encoder h alone (reconstruction); at its end h takes its EMA
weights, its latent statistics are measured, and it is frozen. Stage 2 (``steps``) trains the
backbone f and decoder g on the configured objective. Both use AdamW, linear warm-up then cosine
decay, gradient clipping and an EMA of the trained weights; bf16 autocast on CUDA only; DDP under
``torchrun``. Every random draw of step s comes from a generator seeded by (seed, s, rank), so a
run's data position and noise are its step count, and ``--resume`` continues exactly.

Output folder::

    <out>/checkpoint/   config.json, model.safetensors (raw weights), ema.safetensors,
                        optimizer.pt (AdamW + scheduler, loaded with weights_only=True),
                        state.json (step, stage, torch RNG)
    <out>/model/        the exported model (EMA weights): what ``--model-args path=`` takes
    <out>/log.csv       losses, learning rate, gradient norm and the collapse probe
    <out>/samples/      step-XXXXXXX.png strips: context | prediction | truth
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from reference_model.config import RunConfig, load_run_config
from reference_model.data import WindowStream
from reference_model.model import PanModel

__all__ = ["LOG_COLUMNS", "train"]

LOG_COLUMNS = (
    "step",
    "stage",
    "loss",
    "recon",
    "kl",
    "diffusion",
    "latent",
    "outcome",
    "unroll",
    "collapse",
    "encoder_var",
    "lr",
    "grad_norm",
    "seconds",
)
AUTOENCODER, DYNAMICS = "autoencoder", "dynamics"
_CALIBRATION_SALT = 1
_SAMPLE_SALT = 2


#: h's decoder half (latents to pixels): what stage 1 trains under ``train.ae_decoder_only``
_H_DECODER = ("encoder.vae.decoder.", "encoder.vae.post_quant_conv.")


def _trainable(
    model: PanModel, stage: str, joint: bool = False, decoder_only: bool = False
) -> dict[str, nn.Parameter]:
    """The parameters a stage trains: h in stage 1 (only its decoder half with
    ``train.ae_decoder_only``); f (reward head included) and g in stage 2, plus h when
    ``train.joint_encoder`` is set."""
    if stage == AUTOENCODER and decoder_only:
        return {n: p for n, p in model.named_parameters() if n.startswith(_H_DECODER)}
    parts = ("encoder",) if stage == AUTOENCODER else ("backbone", "decoder")
    if joint and stage == DYNAMICS:
        parts = ("encoder", *parts)
    return {n: p for n, p in model.named_parameters() if n.split(".")[0] in parts}


@dataclasses.dataclass
class _Stage:
    name: str
    params: dict[str, nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: dict[str, torch.Tensor]


def _make_stage(model: PanModel, stage: str, cfg: RunConfig) -> _Stage:
    t = cfg.train
    for p in model.parameters():
        p.requires_grad_(False)
    params = _trainable(model, stage, t.joint_encoder, t.ae_decoder_only)
    for p in params.values():
        p.requires_grad_(True)
    lr, steps = (t.ae_lr, t.ae_steps) if stage == AUTOENCODER else (t.lr, t.steps)
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=lr, weight_decay=t.weight_decay, betas=(0.9, 0.99)
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(t.warmup, steps, t.min_lr_ratio)
    )
    ema = {n: p.detach().clone() for n, p in params.items()}
    return _Stage(stage, params, optimizer, scheduler, ema)


@torch.no_grad()
def _ema_update(stage: _Stage, decay: float) -> None:
    for n, p in stage.params.items():
        stage.ema[n].lerp_(p.detach(), 1.0 - decay)


@contextlib.contextmanager
def _ema_weights(model: PanModel, stage: _Stage) -> Iterator[None]:
    """Temporarily swaps the stage's EMA weights into the model."""
    saved = {n: p.detach().clone() for n, p in stage.params.items()}
    with torch.no_grad():
        for n, p in stage.params.items():
            p.copy_(stage.ema[n])
    try:
        yield
    finally:
        with torch.no_grad():
            for n, p in stage.params.items():
                p.copy_(saved[n])


def _finish_autoencoder(
    model: PanModel, stage: _Stage, stream: WindowStream, cfg: RunConfig
) -> None:
    """End of stage 1: h takes its EMA weights and measures its latent statistics (unless only
    its decoder trained: the latents, and so their statistics, are the encoder's as loaded)."""
    with torch.no_grad():
        for n, p in stage.params.items():
            p.copy_(stage.ema[n])
    if cfg.train.ae_decoder_only:
        return
    # The same frames on every rank, so all ranks freeze the same h.
    frames, _ = stream.batch(0, max(64, cfg.train.batch_size), salt=_CALIBRATION_SALT, rank=0)
    from reference_model.encoder import frames_to_tensor

    model.encoder.calibrate(frames_to_tensor(frames.flatten(0, 1).to(model.device)))


def _init_encoder(model: PanModel, path: Path, cfg: RunConfig) -> None:
    """Copies h (weights and latent statistics) from the checkpoint at ``path``."""
    source = PanModel.from_pretrained(path)
    if dataclasses.asdict(source.config.encoder) != dataclasses.asdict(cfg.model.encoder):
        raise ConfigError(
            f"train.init_encoder: the encoder in {path / 'config.json'} differs from the "
            "model.encoder section of the training config."
        )
    model.encoder.load_state_dict(source.encoder.state_dict())


def _init_from(model: PanModel, path: Path) -> None:
    """Warm start: every weight of the checkpoint at ``path`` (a model of the same architecture;
    a reward head it lacks keeps its fresh initialisation)."""
    source = PanModel.from_pretrained(path).state_dict()
    own = model.state_dict()
    bad = [k for k in source if k not in own or own[k].shape != source[k].shape]
    if bad:
        raise ConfigError(
            f"train.init_from: {path / 'config.json'} is not the architecture of the training "
            f"config (first mismatch: {bad[0]})."
        )
    model.load_state_dict(source, strict=False)


def _save_checkpoint(
    out: Path, model: PanModel, stage: _Stage, step: int, cfg: RunConfig, training: dict[str, Any]
) -> None:
    from safetensors.torch import save

    from panbench.io import atomic_write_bytes, atomic_write_json

    tmp = out / "checkpoint.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, training={**training, "step": step})
    ema = {n: t.detach().cpu().contiguous() for n, t in stage.ema.items()}
    atomic_write_bytes(tmp / "ema.safetensors", save(ema))
    buf = io.BytesIO()
    torch.save(
        {"optimizer": stage.optimizer.state_dict(), "scheduler": stage.scheduler.state_dict()}, buf
    )
    atomic_write_bytes(tmp / "optimizer.pt", buf.getvalue())
    state = {"step": step, "stage": stage.name, "torch_rng": torch.get_rng_state().tolist()}
    atomic_write_json(tmp / "state.json", state, indent=None)
    swap_dir(tmp, out / "checkpoint")
    # The exported model: the stage's EMA weights (stage 1 exports a model whose f/g are untrained).
    export = out / "model.tmp"
    if export.exists():
        shutil.rmtree(export)
    with _ema_weights(model, stage):
        model.save_pretrained(export, training={**training, "step": step})
    swap_dir(export, out / "model")


def _load_checkpoint(out: Path, model: PanModel, cfg: RunConfig) -> tuple[int, _Stage]:
    from safetensors.torch import load_file

    ckpt = out / "checkpoint"
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        raise DataError(
            f"--resume: no checkpoint in {out} (looked for {state_file}); run without --resume "
            "to start training."
        )
    loaded = PanModel.from_pretrained(ckpt)
    config_now = dataclasses.asdict(cfg.model)
    if dataclasses.asdict(loaded.config) != config_now:
        raise ConfigError(
            f"--resume: the model config in {ckpt / 'config.json'} differs from the training "
            "config given; resume with the config the run started with."
        )
    model.load_state_dict(loaded.state_dict())
    state = json.loads(state_file.read_text(encoding="utf-8"))
    stage = _make_stage(model, state["stage"], cfg)
    ema = load_file(str(ckpt / "ema.safetensors"))
    for n in stage.ema:
        stage.ema[n].copy_(ema[n])
    try:  # weights_only: a pickle that would construct objects is refused, never run
        opt = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(
            f"{ckpt / 'optimizer.pt'}: expected the optimizer state `panbench train` saves "
            f"(plain tensors and numbers), but it cannot be loaded safely ({err}). Restart the "
            "run without --resume into a new --out."
        ) from err
    stage.optimizer.load_state_dict(opt["optimizer"])
    stage.scheduler.load_state_dict(opt["scheduler"])
    torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
    return int(state["step"]), stage


def _sample_strip(
    out: Path, model: PanModel, stage: _Stage, stream: WindowStream, cfg: RunConfig, step: int
) -> None:
    """PNG rows of context | prediction | truth for 4 fixed windows (EMA weights)."""
    import numpy as np
    from PIL import Image

    from panbench.io import atomic_write_bytes

    frames, texts = stream.batch(0, 4, salt=_SAMPLE_SALT)
    # An unrolled run's windows are longer: the strip shows the first history + 1 frames.
    rounds = cfg.model.history
    frames, texts = frames[:, : rounds + 1], [row[:rounds] for row in texts]
    gens = [torch.Generator().manual_seed(i) for i in range(frames.shape[0])]
    with _ema_weights(model, stage), torch.no_grad():
        model.eval()
        latents = model.encode_frames(frames[:, :-1])
        ids = model.encode_actions(texts)
        pred = model.decode_latents(model.predict_next(latents, ids, gens)).cpu().numpy()
        model.train()
    truth = frames.numpy()
    rows = [np.concatenate([truth[i, -2], pred[i], truth[i, -1]], axis=1) for i in range(len(pred))]
    strip = np.concatenate(rows, axis=0).repeat(4, 0).repeat(4, 1)
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="PNG")
    (out / "samples").mkdir(exist_ok=True)
    atomic_write_bytes(out / "samples" / f"step-{step:07d}.png", buf.getvalue())


@dataclasses.dataclass
class _Run:
    """What every step of a classic run reads: config, folder, process, model, data, log."""

    cfg: RunConfig
    out: Path
    rank: int
    world: int
    dev: torch.device
    model: PanModel
    stream: WindowStream
    stop: int
    log: CsvLog | None
    training: dict[str, Any]
    say: Any
    first: int = 0  # the step this process started (or resumed) from: the ETA's origin

    @property
    def total(self) -> int:
        """Steps of both stages (what the schedules follow)."""
        return self.cfg.train.ae_steps + self.cfg.train.steps


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
    """Trains the reference model as configured; returns the exported model folder.

    ``panbench train`` reaches this through :func:`reference_model.recipes.train`, which picks
    the recipe from the config's ``recipe:`` value.

    Args:
        config: a training config YAML (``reference_model/configs/<name>.yaml``).
        out: the run folder (see the module docstring).
        max_steps: stop after this global step (stage 1 + stage 2 steps); the schedules still
            follow the configured totals, so a stopped run resumes onto the same trajectory.
        resume: continue from ``<out>/checkpoint``.
        device: ``cpu``, ``cuda``, ... (default: CUDA when available).
        command: the command line recorded in the checkpoints' ``config.json``.
        console: a rich console for progress lines (None: print).

    Raises:
        ConfigError: bad config, or ``out`` holds a run and ``resume`` is False.
        DataError: ``resume`` without a checkpoint, or a corrupt checkpoint.
    """
    cfg = load_run_config(config)
    out = Path(out)
    check_fresh_out(out, resume)
    run, start, stage = _start(cfg, config, out, max_steps, resume, device, command, console)
    t = cfg.train
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if run.dev.type == "cuda"
        else contextlib.nullcontext()
    )
    runner = _wrap(run.model, run.world, t.compile)
    run.model.train()
    tic = time.perf_counter()
    for step in range(start, run.stop):
        if step == t.ae_steps and stage.name == AUTOENCODER:
            _finish_autoencoder(run.model, stage, run.stream, cfg)
            stage = _make_stage(run.model, DYNAMICS, cfg)
            runner = _wrap(
                run.model, run.world, t.compile
            )  # DDP syncs what was trainable when built
        losses = _losses(run, stage, runner, step, autocast)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(list(stage.params.values()), t.grad_clip)
        stage.optimizer.step()
        stage.scheduler.step()
        stage.optimizer.zero_grad(set_to_none=True)
        _ema_update(stage, t.ema_decay)
        if run.rank == 0:
            _report(run, stage, losses, float(grad_norm), step + 1, tic)
    if run.world > 1:
        barrier()
    return out / "model"


def _start(
    cfg: RunConfig,
    config: str | Path,
    out: Path,
    max_steps: int | None,
    resume: bool,
    device: str | None,
    command: str | None,
    console: Any,
) -> tuple[_Run, int, _Stage]:
    """Builds the run (seeded model, data stream, log) and its first or resumed stage."""
    rank, world, dev = setup_distributed(device)
    say = console.print if console is not None else print
    t = cfg.train
    total = t.ae_steps + t.steps
    stop = total if max_steps is None else min(total, int(max_steps))
    if t.num_threads > 0:
        torch.set_num_threads(t.num_threads)
    torch.manual_seed(t.seed)
    model = PanModel(cfg.model).to(dev)
    window = cfg.model.history + 1 + t.unroll
    stream = WindowStream(cfg.data, cfg.model.resolution, window, t.seed, rank)
    start = 0
    if resume:
        start, stage = _load_checkpoint(out, model, cfg)
        model.to(dev)
        stage = _make_stage_on(model, stage, dev)
    else:
        if t.init_from:
            _init_from(model, Path(t.init_from))
        if t.init_encoder:
            _init_encoder(model, Path(t.init_encoder), cfg)
        stage = _make_stage(model, AUTOENCODER if t.ae_steps > 0 else DYNAMICS, cfg)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    log = CsvLog(out / "log.csv", start if resume else None, LOG_COLUMNS) if rank == 0 else None
    training = training_record(config, cfg.to_dict(), command, total_steps=total)
    run = _Run(cfg, out, rank, world, dev, model, stream, stop, log, training, say, start)
    if rank == 0:
        counts = model.num_parameters()
        say(
            f"training {Path(config).name}: {counts['total']:,} parameters "
            f"(h {counts['encoder']:,}, f {counts['backbone']:,}, g {counts['decoder']:,}), "
            f"steps {start}->{stop} of {total} on {dev} x{world}"
        )
    return run, start, stage


def _losses(
    run: _Run, stage: _Stage, runner: nn.Module, step: int, autocast: Any
) -> dict[str, torch.Tensor]:
    """The losses of batch ``step``; the networks run under ``autocast`` (bf16 on CUDA)."""
    t, dev = run.cfg.train, run.dev
    gen = torch.Generator().manual_seed(batch_seed(t.seed, step, run.rank, salt=3))
    if stage.name == AUTOENCODER:
        # About batch_size frames per first-stage step, whatever the window length.
        size = max(1, math.ceil(t.batch_size / run.stream.window))
        frames, _ = run.stream.batch(step, size)
        with autocast:
            return runner(AUTOENCODER, frames.flatten(0, 1).to(dev), gen, t.ae_object_weight)
    frames, texts, outcomes = run.stream.windows(step, t.batch_size)
    ids = run.model.encode_actions(texts)
    with autocast:
        return runner(
            DYNAMICS,
            frames.to(dev),
            ids,
            gen,
            outcomes,
            t.joint_encoder,
            t.unroll,
            t.unroll_steps,
            t.unroll_history,
        )


def _report(
    run: _Run,
    stage: _Stage,
    losses: dict[str, torch.Tensor],
    grad_norm: float,
    done: int,
    tic: float,
) -> None:
    """Rank 0 after step ``done``: the log row, the sample strip and the checkpoint when due."""
    t, stop = run.cfg.train, run.stop
    assert run.log is not None
    if done % t.log_every == 0 or done == stop:
        row: dict[str, Any] = {c: "" for c in LOG_COLUMNS}
        row.update(
            step=done,
            stage=stage.name,
            lr=stage.scheduler.get_last_lr()[0],
            grad_norm=grad_norm,
            seconds=round(time.perf_counter() - tic, 2),
        )
        row.update({k: float(v.detach()) for k, v in losses.items()})
        run.log.write(row)
        shown = ", ".join(f"{k} {float(v.detach()):.4f}" for k, v in losses.items())
        timing = step_timing(done, run.first, run.stop, time.perf_counter() - tic)
        run.say(f"step {done}/{run.total} ({stage.name}) {shown}, {timing}")
    if stage.name == DYNAMICS and (done % t.sample_every == 0 or done == stop):
        _sample_strip(run.out, run.model, stage, run.stream, run.cfg, done)
    if done % t.checkpoint_every == 0 or done == stop:
        _save_checkpoint(run.out, run.model, stage, done, run.cfg, run.training)


def _wrap(model: PanModel, world: int, compile_: bool) -> nn.Module:
    """The module a step calls: DDP over the stage's trainable parameters, compiled if asked."""
    runner: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(model, find_unused_parameters=True)
    if compile_:
        runner = torch.compile(runner)  # type: ignore[assignment]
    return runner


def _make_stage_on(model: PanModel, stage: _Stage, dev: torch.device) -> _Stage:
    """Moves a resumed stage's optimizer state and EMA to ``dev`` (a no-op on CPU)."""
    if dev.type == "cpu":
        return stage
    for st in stage.optimizer.state.values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and k != "step":
                st[k] = v.to(dev)
    stage.ema = {n: v.to(dev) for n, v in stage.ema.items()}
    return stage
