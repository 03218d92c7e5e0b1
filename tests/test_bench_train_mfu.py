"""benchmarks/bench_train_mfu.py: FLOP counts against hand counts, the peak table, MFU, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "reference_model" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def script():  # type: ignore[no-untyped-def]
    return load_script("bench_train_mfu")


def test_linear_flops_match_the_hand_count(script) -> None:  # type: ignore[no-untyped-def]
    batch, d_in, d_out = 5, 7, 3
    layer = torch.nn.Linear(d_in, d_out, bias=False)
    x = torch.randn(batch, d_in, requires_grad=True)

    def forward() -> None:
        layer(x)

    def train_step() -> None:
        layer(x).sum().backward()

    # A matmul of [b, i] by [i, o] is b*i*o multiply-adds: 2*b*i*o FLOPs. The backward pass
    # computes two such products (the gradients of the input and of the weight).
    assert script.count_flops(forward) == 2 * batch * d_in * d_out
    assert script.count_flops(train_step) == 6 * batch * d_in * d_out


def test_conv_flops_match_the_hand_count(script) -> None:  # type: ignore[no-untyped-def]
    conv = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8)
    # Each of 2*4*8*8 outputs sums 3*3*3 products.
    expected = 2 * (2 * 4 * 8 * 8) * (3 * 3 * 3)
    assert script.count_flops(lambda: conv(x)) == expected


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.4),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_peak_by_device_name(script, name: str, peak: float | None) -> None:  # type: ignore[no-untyped-def]
    assert script.peak_tflops(name) == peak


def test_measure_tiny_on_cpu(script) -> None:  # type: ignore[no-untyped-def]
    small = script.measure(TINY, "cpu", 1, 4, 0.5)
    large = script.measure(TINY, "cpu", 1, 8, None)
    assert [r["stage"] for r in small] == ["autoencoder", "dynamics"]
    for row in small:
        assert row["step_s"] > 0 and row["tflop_per_step"] > 0
        assert row["mfu"] == pytest.approx(row["achieved_tflops"] / 0.5)
        assert row["achieved_tflops"] == pytest.approx(row["tflop_per_step"] / row["step_s"])
    assert all(r["mfu"] is None for r in large)
    # Twice the windows: twice the FLOPs of a dynamics step (counted, not timed).
    ratio = large[1]["tflop_per_step"] / small[1]["tflop_per_step"]
    assert ratio == pytest.approx(2.0, rel=0.02)
    # Stage 2 runs f and g over every window; it costs more than stage 1's autoencoder step.
    assert small[1]["tflop_per_step"] > small[0]["tflop_per_step"]


def test_cli_refuses_bad_input(script, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        script.main(["--config", str(TINY), "--steps", "0"])
    assert exc.value.code == 2
    assert "expected an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        script.main(["--config", str(tmp_path / "none.yaml")])
    assert exc.value.code == 2
    assert "expected a config file" in capsys.readouterr().err


def test_cli_prints_the_table(script, capsys) -> None:  # type: ignore[no-untyped-def]
    code = script.main(
        ["--config", str(TINY), "--device", "cpu", "--steps", "1", "--batch-size", "4"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "tiny config" in out and "batch 4, cpu" in out
    assert out.count("| autoencoder |") == 1 and out.count("| dynamics |") == 1
