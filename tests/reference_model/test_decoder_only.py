"""train.ae_decoder_only: stage 1 retrains h's decoder half and nothing else of a trained model."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from panbench.errors import ConfigError
from reference_model.model import PanModel
from reference_model.recipes import train
from reference_model.train import _H_DECODER
from tests.reference_model.helpers import write_run_config


def _with(config: Path, lines: str) -> Path:
    config.write_text(config.read_text().replace("  seed: 3\n", f"  seed: 3\n{lines}"))
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose h, f and g all trained (2 + 2 steps)."""
    root = tmp_path_factory.mktemp("source")
    train(write_run_config(root / "a.yaml", ae_steps=2, steps=2), root / "a")
    return root / "a" / "model"


def test_only_the_decoder_half_of_h_moves(tmp_path: Path, trained: Path) -> None:
    config = write_run_config(tmp_path / "b.yaml", ae_steps=3, steps=0)
    _with(config, f"  init_from: {trained}\n  ae_decoder_only: true\n")
    train(config, tmp_path / "b")
    before = load_file(str(trained / "model.safetensors"))
    after = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    assert before.keys() == after.keys()
    moved = {k for k in before if not before[k].equal(after[k])}
    assert moved, "nothing trained"
    assert all(
        k.startswith(("encoder.vae.decoder.", "encoder.vae.post_quant_conv.")) for k in moved
    )
    assert any(k.startswith("encoder.vae.decoder.") for k in moved)
    # the encoder, its latent statistics, f and g are the source's: same latents, same dynamics
    assert after["encoder.latent_std"].equal(before["encoder.latent_std"])
    src, new = PanModel.from_pretrained(trained), PanModel.from_pretrained(tmp_path / "b" / "model")
    frames = torch.randint(
        0, 256, (2, 3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        z = src.encode_frames(frames)
        assert new.encode_frames(frames).equal(z)
        assert not new.decode_latents(z[:, 0]).equal(src.decode_latents(z[:, 0]))


def test_decoder_only_resumes_bit_exactly(tmp_path: Path, trained: Path) -> None:
    config = write_run_config(tmp_path / "c.yaml", ae_steps=3, steps=1)
    _with(config, f"  init_from: {trained}\n  ae_decoder_only: true\n")
    train(config, tmp_path / "straight")
    train(config, tmp_path / "split", max_steps=2)
    train(config, tmp_path / "split", resume=True)
    for part in (
        "checkpoint/model.safetensors",
        "checkpoint/ema.safetensors",
        "model/model.safetensors",
    ):
        a, b = (
            load_file(str(tmp_path / "straight" / part)),
            load_file(str(tmp_path / "split" / part)),
        )
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), part


def test_decoder_only_with_init_encoder_is_allowed(tmp_path: Path, trained: Path) -> None:
    config = write_run_config(tmp_path / "d.yaml", ae_steps=1, steps=1)
    _with(config, f"  init_encoder: {trained}\n  ae_decoder_only: true\n")
    # another seed draws other calibration frames, so re-measured statistics would differ
    config.write_text(config.read_text().replace("  seed: 3\n", "  seed: 4\n"))
    train(config, tmp_path / "d")
    a = load_file(str(trained / "model.safetensors"))
    b = load_file(str(tmp_path / "d" / "model" / "model.safetensors"))
    # the stage boundary does not re-measure the latent statistics: the latents stay the source's
    kept = [k for k in a if k.startswith(("encoder.vae.encoder.", "encoder.vae.quant_conv."))]
    assert all(a[k].equal(b[k]) for k in [*kept, "encoder.latent_mean", "encoder.latent_std"])


@pytest.mark.parametrize(
    ("lines", "ae_steps", "match"),
    [
        ("  ae_decoder_only: true\n", 2, "needs train.init_from or train.init_encoder"),
        ("  init_from: {src}\n  ae_decoder_only: true\n", 0, "train.ae_steps is 0"),
        ("  init_encoder: {src}\n", 2, r"ae_steps must be 0 \(or train.ae_decoder_only true\)"),
    ],
)
def test_bad_settings_are_refused(
    tmp_path: Path, trained: Path, lines: str, ae_steps: int, match: str
) -> None:
    config = _with(
        write_run_config(tmp_path / "e.yaml", ae_steps=ae_steps, steps=1), lines.format(src=trained)
    )
    with pytest.raises(ConfigError, match=match):
        train(config, tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_object_weight_matches_a_numpy_reference() -> None:
    from reference_model.encoder import OBJECT_DISTANCE, frames_to_tensor
    from tests.reference_model.helpers import tiny_model

    model = tiny_model()
    frames = torch.full((2, 32, 32, 3), 40, dtype=torch.uint8)  # a plain background...
    frames[0, 4:8, 10:14] = torch.tensor([220, 60, 60], dtype=torch.uint8)  # ...a red agent
    frames[1, 20:23, 2:9] = torch.tensor([60, 200, 60], dtype=torch.uint8)
    frames[1, 0, 0] = torch.tensor([50, 45, 40], dtype=torch.uint8)  # near the background
    x = frames_to_tensor(frames)
    with torch.no_grad():
        y = model.encoder.vae.decode(model.encoder.vae.encode(x).latent_dist.mode()).sample
        got = model.encoder.reconstruction_loss(x, None, 4.0)["recon"]
        plain = model.encoder.reconstruction_loss(x)["recon"]
    xn, yn = x.double().numpy(), y.double().numpy()
    err = np.abs(yn - xn) + (yn - xn) ** 2
    median = np.median(xn.reshape(2, 3, -1), axis=2)[:, :, None, None]
    objects = np.abs(xn - median).sum(axis=1, keepdims=True) > OBJECT_DISTANCE
    assert objects.sum() == 16 + 21  # the two objects; the near-background pixel is not one
    weight = 1.0 + 4.0 * objects
    assert float(got) == pytest.approx((err * weight).mean() / weight.mean(), rel=1e-5)
    assert float(plain) == pytest.approx(err.mean(), rel=1e-5)
    assert float(got) != pytest.approx(float(plain), rel=1e-3)


def test_object_weight_is_passed_to_stage_one_and_checked(tmp_path: Path, trained: Path) -> None:
    a = _with(
        write_run_config(tmp_path / "a.yaml", ae_steps=1, steps=0), f"  init_from: {trained}\n"
    )
    b = _with(
        write_run_config(tmp_path / "b.yaml", ae_steps=1, steps=0),
        f"  init_from: {trained}\n  ae_object_weight: 4.0\n",
    )
    train(a, tmp_path / "a")
    train(b, tmp_path / "b")
    ra, rb = (
        next(csv.DictReader((tmp_path / r / "log.csv").read_text().splitlines())) for r in "ab"
    )
    assert ra["loss"] != rb["loss"] and ra["kl"] == rb["kl"]  # same frames, another weighting
    c = _with(
        write_run_config(tmp_path / "c.yaml", ae_steps=1, steps=0), "  ae_object_weight: -1\n"
    )
    with pytest.raises(ConfigError, match=r"train.ae_object_weight >= 0, but got -1"):
        train(c, tmp_path / "c")


def test_init_encoder_replaces_the_h_of_init_from(tmp_path: Path, trained: Path) -> None:
    other = write_run_config(tmp_path / "o.yaml", ae_steps=2, steps=0)
    other.write_text(other.read_text().replace("  seed: 3\n", "  seed: 5\n"))
    train(other, tmp_path / "o")
    # f and g of one model, h of another; one decoder-only step (f, g and h's encoder half stay)
    config = write_run_config(tmp_path / "m.yaml", ae_steps=1, steps=0)
    lines = f"  init_from: {trained}\n  init_encoder: {tmp_path / 'o' / 'model'}\n"
    _with(config, lines + "  ae_decoder_only: true\n")
    train(config, tmp_path / "m")
    got = load_file(str(tmp_path / "m" / "model" / "model.safetensors"))
    h = load_file(str(tmp_path / "o" / "model" / "model.safetensors"))
    fg = load_file(str(trained / "model.safetensors"))
    encoder = [k for k in got if k.startswith("encoder.") and not k.startswith(_H_DECODER)]
    assert encoder and all(got[k].equal(h[k]) for k in encoder)
    assert not all(h[k].equal(fg[k]) for k in encoder)  # the two h differ
    assert all(got[k].equal(fg[k]) for k in got if not k.startswith("encoder."))
