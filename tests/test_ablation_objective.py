"""benchmarks/ablation_objective.py: its table and figure from run logs written here."""

from __future__ import annotations

from pathlib import Path

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
