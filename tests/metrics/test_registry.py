"""The metric catalogue, the package's public names and the runnable docstring examples."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest

import panbench.metrics as metrics
from panbench.errors import UnknownNameError
from panbench.metrics import (
    METRICS,
    drift,
    frame,
    get_metric,
    grounded,
    metric_names,
    registry,
    stats,
)


def test_catalogue_entries_resolve_and_agree_with_classes():
    assert len(set(metric_names())) == len(METRICS)
    for info in METRICS:
        assert info.description and len(info.description) <= 100
        if info.function is not None:
            assert callable(info.load_function())
        if info.metric_class is not None:
            cls = info.load_class()
            assert cls.higher_is_better is info.higher_is_better, info.name


def test_unknown_metric_suggests_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean: ssim"):
        get_metric("sssim")


def test_public_names_exist():
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None
    # lpips and fvd name the submodules (imported lazily); their functions live in them
    assert callable(metrics.lpips.lpips) and callable(metrics.fvd.fvd)


def test_reading_the_catalogue_imports_no_torch():
    # `panbench ls metrics`, results, leaderboards and compare start in about a second.
    code = (
        "import sys, panbench.metrics, panbench.metrics.registry, panbench.results\n"
        "print(sorted(m for m in ('torch', 'torchmetrics') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_imports_without_lpips_and_fvd_modules():
    code = (
        "import sys; sys.modules['panbench.metrics.lpips'] = None; "
        "sys.modules['panbench.metrics.fvd'] = None\n"
        "import panbench.metrics as m\n"
        "assert m.psnr_video\n"
        "try:\n    m.FVD\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "panbench.metrics.fvd" in out.stdout


@pytest.mark.parametrize("module", [drift, frame, grounded, registry, stats])
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0
