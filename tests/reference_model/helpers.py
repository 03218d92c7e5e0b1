"""Tiny seeded reference models (under 100k parameters) for fast CPU tests."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from reference_model.config import BackboneConfig, DecoderConfig, EncoderConfig, ModelConfig
from reference_model.model import PanModel


def tiny_config(objective: str = "generative") -> ModelConfig:
    """A model config of about 90k parameters at 32x32 (latents 4x16x16, 16 state tokens)."""
    return ModelConfig(
        resolution=32,
        history=2,
        objective=objective,
        encoder=EncoderConfig(block_out_channels=[8, 8], latent_channels=4, norm_num_groups=4),
        backbone=BackboneConfig(
            hidden_size=16,
            num_layers=1,
            num_heads=2,
            num_kv_heads=2,
            intermediate_size=32,
            state_patch=4,
            max_action_bytes=32,
        ),
        decoder=DecoderConfig(
            block_out_channels=[8, 16],
            attention_levels=[False, True],
            cross_attention_dim=8,
            attention_head_dim=4,
            sample_steps=2,
        ),
    )


def tiny_model(seed: int = 0, objective: str = "generative") -> PanModel:
    """A seeded tiny model whose state projection is non-zero, so actions reach the decoder."""
    torch.manual_seed(seed)
    model = PanModel(tiny_config(objective))
    with torch.no_grad():  # trained models have a non-zero projection; zero would hide f
        model.decoder.state_proj.weight.normal_(0.0, 0.5)
    return model.eval()


def write_run_config(file: Path, ae_steps: int = 2, steps: int = 4, **data: object) -> Path:
    """A training config YAML for the tiny model (batch 2, every step logged)."""
    import dataclasses

    doc = {
        "model": dataclasses.asdict(tiny_config()),
        "train": {
            "seed": 3,
            "batch_size": 2,
            "ae_steps": ae_steps,
            "steps": steps,
            "warmup": 1,
            "log_every": 1,
            "sample_every": 3,
            "checkpoint_every": 100,
            "num_threads": 1,
        },
        "data": {"source": "env", "env": "shapes", "policy": "agent", **data},
    }
    file.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return file
