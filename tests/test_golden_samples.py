"""Per-episode values never change by accident: quick's samples of the demo models, byte for byte.

The digests in tests/golden/quick_sample_digests.json were recorded on the commit before the
one-way architecture work (benchmarks/sample_digests.py --write); every refactor since must
reproduce them. pan-ref runs row by row here (micro_batch=1, that commit's scheme).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "sample_digests", ROOT / "benchmarks/sample_digests.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "model",
    ["copy-last", "oracle", "random-action", pytest.param("pan-ref", marks=pytest.mark.slow)],
)
def test_quick_samples_are_byte_identical_to_the_recorded_ones(model: str, tmp_path: Path) -> None:
    script = _script()
    recorded = json.loads(script.DIGESTS.read_text())[model]
    assert len(recorded) == 8  # every quick task
    assert script.digests(model, tmp_path / model) == recorded
