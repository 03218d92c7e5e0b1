"""Reference model throughput: training steps of both stages and pan-ref rollout frames per second.

Uses the shipped ``tiny`` config with fresh weights (speed does not depend on them). On a CUDA
machine the training rows also report peak GPU memory.
"""

from __future__ import annotations

import time
from typing import Any

import torch


def _timeit(fn: Any, repeats: int) -> float:
    fn()  # warm-up (allocations, kernel choice)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def run(quick: bool) -> list[dict]:
    from panbench.data.episodes import make_episode
    from panbench.envs import make
    from reference_model.config import CONFIG_DIR, load_run_config
    from reference_model.data import WindowStream
    from reference_model.model import PanModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    run_cfg = load_run_config(CONFIG_DIR / "tiny.yaml")
    torch.manual_seed(0)
    model = PanModel(run_cfg.model).to(device).train()
    stream = WindowStream(run_cfg.data, 32, run_cfg.model.history + 1, seed=0)
    batch = run_cfg.train.batch_size
    frames, texts = stream.batch(0, batch)
    frames = frames.to(device)
    ids = model.encode_actions(texts)
    gen = torch.Generator().manual_seed(0)
    repeats = 2 if quick else 5

    def dynamics_step() -> None:
        model.zero_grad(set_to_none=True)
        model.dynamics_loss(frames, ids, gen)["loss"].backward()

    def autoencoder_step() -> None:
        model.zero_grad(set_to_none=True)
        model.autoencoder_loss(frames[:, 0], gen)["loss"].backward()

    rows: list[dict] = []
    where = f"tiny config, batch {batch}, {device}, {torch.get_num_threads()} threads"
    for name, fn, per_step in (
        ("autoencoder", autoencoder_step, batch),
        ("dynamics", dynamics_step, batch * run_cfg.model.history),
    ):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = _timeit(fn, repeats)
        notes = where + f"; {per_step} target frames per step"
        if device == "cuda":
            notes += f"; peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        rows.append(
            {
                "bench": "reference_model",
                "case": f"train {name} step",
                "value": round(per_step / seconds, 1),
                "unit": "samples/s",
                "target": ">= 30 on 1 CPU thread" if name == "dynamics" else "",
                "notes": notes,
            }
        )

    from panbench.models.pan_ref import PanRefModel
    from panbench.protocols.base import ModelRunner

    model.eval()
    with torch.no_grad():
        adapter = PanRefModel.from_model(model)
        env = make("shapes", resolution=32)
        eps = [make_episode(env, "bench", 0, i, 2, 4, "agent") for i in range(8)]
        runner = ModelRunner(adapter, env, 32)

        def rollout() -> None:
            state = runner.reset(eps)
            for t in range(4):
                state, _ = runner.step(state, [e.actions[t] for e in eps], "bench")

        seconds = _timeit(rollout, 1 if quick else 3)
    steps = run_cfg.model.decoder.sample_steps
    rows.append(
        {
            "bench": "reference_model",
            "case": f"pan-ref rollout ({steps} DDIM steps)",
            "value": round(len(eps) * 4 / seconds, 1),
            "unit": "frames/s",
            "target": ">= 5 on 1 CPU thread",
            "notes": f"8 episodes x 4 steps, {device}; 16-row micro-batches (batch-independent)",
        }
    )
    return rows
