"""The open-weights training loop: dispatch, stages 1 and 2, exact resume, FSDP2 on CPU (gloo)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from panbench.errors import ConfigError
from reference_model.ow.model import PanOWModel
from reference_model.recipes import train
from tests.reference_model.ow.ow_helpers import write_config

STEPS = {"steps": 4, "checkpoint_every": 2, "warmup": 1}


@pytest.fixture
def clean_env() -> Iterator[None]:
    """Restores os.environ and tears down a process group a run left behind."""
    saved = dict(os.environ)
    yield
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    os.environ.clear()
    os.environ.update(saved)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_stage1_run_through_panbench_train(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "s1.yaml", train=STEPS)
    out = train(cfg, tmp_path / "run", command="panbench train ...")
    assert out == tmp_path / "run" / "model"
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0] == "step,stage,loss,lr,grad_norm,seconds" and len(rows) == 5
    PanOWModel.from_pretrained(out)
    init = weights(out)
    assert any(k.startswith("decoder.transformer.") for k in init)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(cfg, tmp_path / "run")


def test_resume_is_bit_exact_and_stage2_starts_from_stage1(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "s1.yaml", train={**STEPS, "cache_dir": str(tmp_path / "c")})
    train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "split", max_steps=2)
    train(cfg, tmp_path / "split", resume=True)
    a, b = weights(tmp_path / "straight" / "model"), weights(tmp_path / "split" / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("optimizer-rank00000.safetensors",):
        oa = load_file(str(tmp_path / "straight" / "checkpoint" / name))
        ob = load_file(str(tmp_path / "split" / "checkpoint" / name))
        assert all(torch.equal(oa[k], ob[k]) for k in oa)

    stage1 = tmp_path / "straight" / "model"
    s2 = write_config(
        tmp_path / "s2.yaml",
        train={**STEPS, "stage": 2, "init_from": str(stage1), "cache_dir": str(tmp_path / "c")},
    )
    train(s2, tmp_path / "stage2")
    after = weights(tmp_path / "stage2" / "model")
    start = weights(stage1)
    moved = {k for k in start if not torch.equal(start[k], after[k])}
    assert any(k.startswith("backbone.queries") for k in moved)
    assert any(".state_attn." in k for k in moved)
    assert not any(k.startswith(("decoder.vae.", "decoder.text_encoder.")) for k in moved)

    other = write_config(
        tmp_path / "bad.yaml",
        model={"resolution": 64},
        train={**STEPS, "stage": 2, "init_from": str(stage1)},
    )
    with pytest.raises(ConfigError, match="model config differs"):
        train(other, tmp_path / "bad")


def test_fsdp2_single_process_matches_plain_training(tmp_path: Path, clean_env: None) -> None:
    common = {**STEPS, "stage": 2, "cache_dir": str(tmp_path / "c")}
    plain = write_config(tmp_path / "plain.yaml", train=common)
    sharded = write_config(
        tmp_path / "fsdp.yaml",
        train={**common, "fsdp": True, "activation_checkpointing": True},
    )
    train(plain, tmp_path / "plain")
    train(sharded, tmp_path / "fsdp", max_steps=2)
    train(sharded, tmp_path / "fsdp", resume=True)
    a, b = weights(tmp_path / "plain" / "model"), weights(tmp_path / "fsdp" / "model")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)


def _worker(rank: int, cfg: str, out: str, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )
    train(cfg, out)


def test_fsdp2_two_processes_gloo(tmp_path: Path) -> None:
    import torch.multiprocessing as mp  # two CPU processes, gloo: about 10 s

    from reference_model.common.training import free_port

    cfg = write_config(tmp_path / "fsdp.yaml", train={**STEPS, "stage": 2, "fsdp": True})
    mp.spawn(_worker, args=(str(cfg), str(tmp_path / "run"), free_port()), nprocs=2)
    model = PanOWModel.from_pretrained(tmp_path / "run" / "model")
    assert model.num_parameters()["total"] > 0
    assert (tmp_path / "run" / "checkpoint" / "optimizer-rank00001.safetensors").is_file()
