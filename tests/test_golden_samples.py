"""Per-episode values never change by accident: quick's samples of the demo models, byte for byte.

The digests in tests/golden/quick_sample_digests.json were recorded on the commit before the
one-way architecture work (benchmarks/sample_digests.py --write); every refactor since must
reproduce them. pan-ref runs row by row here (micro_batch=1, that commit's scheme) on one torch
thread (row-by-row values depend on the thread count; the default 16-row micro-batches do not).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script():  # type: ignore[no-untyped-def]
    return load_script("sample_digests")


@pytest.mark.parametrize(
    "model",
    ["copy-last", "oracle", "random-action", pytest.param("pan-ref", marks=pytest.mark.slow)],
)
def test_quick_samples_are_byte_identical_to_the_recorded_ones(model: str, tmp_path: Path) -> None:
    import torch

    script = _script()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as recorded: row-by-row values depend on the thread count
    recorded = json.loads(script.DIGESTS.read_text())[model]
    assert len(recorded) == 8  # every quick task
    try:
        assert script.digests(model, tmp_path / model) == recorded
    finally:
        torch.set_num_threads(threads)
