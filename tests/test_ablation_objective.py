"""benchmarks/ablation_objective.py: its table and figure from run logs written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reference_model.train import LOG_COLUMNS
from tests.scripts import load_script


def _script():  # type: ignore[no-untyped-def]
    return load_script("ablation_objective")


def _run(folder: Path, collapse: list[float], encoder_var: list[float] | None) -> Path:
    rows = []
    for i, c in enumerate(collapse):
        row = {k: "" for k in LOG_COLUMNS}
        row.update(step=10 * (i + 1), stage="dynamics", collapse=c, diffusion=0.1, latent=0.2)
        if encoder_var is not None:
            row["encoder_var"] = encoder_var[i]
        rows.append(row)
    folder.mkdir()
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    if encoder_var is None:  # a log from before the h probe was logged
        frame = frame.drop(columns=["encoder_var"])
    frame.to_csv(folder / "log.csv", index=False)
    return folder


def test_table_and_figure(tmp_path: Path) -> None:
    script = _script()
    gen = _run(tmp_path / "g", [0.8, 0.6, 0.4, 0.2, 0.2, 0.2, 0.2, 0.2], None)
    lat = _run(tmp_path / "l", [0.5] * 8, [0.3, 0.2, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01])
    out = tmp_path / "fig.png"
    assert script.main([str(gen), str(lat), "--joint", str(gen), str(lat), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    lines = script.table({"a": script._read(gen), "b": script._read(lat)}).splitlines()
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    # f probe: first 0.8, mean of the last five 0.2, ratio 0.25; no h probe in this log
    assert cells[:8] == ["a", "80", "0.8", "0.2", "0.25", "n/a", "n/a", "n/a"]
    cells = [c.strip() for c in lines[3].split("|")[1:-1]]
    assert cells[5:8] == ["0.3", "0.01", "0.0333"]
    assert cells[8:] == ["0.1000", "0.2000"]


def test_a_folder_without_a_log_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"log\.csv"):
        _script()._read(tmp_path)


def test_participation_ratio_against_numpy_eigenvalues() -> None:
    script = _script()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1, 0.0])
    eig = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    expected = eig.sum() ** 2 / (eig**2).sum()
    assert script.participation_ratio(x) == pytest.approx(expected, rel=1e-9)
    assert script.participation_ratio(x * 1e-3) == pytest.approx(expected, rel=1e-9)
    line = np.outer(rng.normal(size=100), rng.normal(size=8))  # one direction only
    assert script.participation_ratio(line) == pytest.approx(1.0)
    assert script.participation_ratio(rng.normal(size=(20000, 4))) == pytest.approx(4.0, rel=0.01)


def test_encoder_probe_reads_the_exported_h(tmp_path: Path) -> None:
    from tests.reference_model.helpers import tiny_model

    script = _script()
    model = tiny_model(seed=1)
    model.save_pretrained(tmp_path / "run" / "model")
    frames = script.probe_frames(count=12)
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == np.uint8
    var, ratio = script.encoder_probe(tmp_path / "run", frames)
    import torch

    with torch.no_grad():
        z = model.encode_frames(torch.from_numpy(frames)[:, None]).flatten(1).numpy()
    assert var == pytest.approx(float(z.var(axis=0, ddof=1).mean()), rel=1e-5)
    assert 1.0 <= ratio <= 11.0  # at most N - 1 directions from 12 frames
