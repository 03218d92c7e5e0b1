"""Tiny open-weights configs and runs shared by the PanOWModel, cache, train and adapter tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import yaml

from reference_model.config import CONFIG_DIR, from_dict
from reference_model.ow.config import OWModelConfig
from reference_model.ow.model import PanOWModel

TINY_YAML = CONFIG_DIR / "ow-tiny.yaml"


def tiny_doc(**sections: dict[str, Any]) -> dict[str, Any]:
    """The shipped ow-tiny.yaml as a dict, with ``sections`` merged into its sections."""
    doc: dict[str, Any] = yaml.safe_load(TINY_YAML.read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["train"].update(num_threads=0, log_every=1, cache_shard_size=4)
    doc["data"].update(episodes=2, length=7)  # 2 x 3 windows of 2 chunks
    for name, values in sections.items():
        doc[name].update(values)
    return doc


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """Writes :func:`tiny_doc` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(tiny_doc(**sections)), encoding="utf-8")
    return path


def tiny_model_config(**backbone: Any) -> OWModelConfig:
    """The model section of ow-tiny.yaml (``backbone`` fields overridden)."""
    doc = tiny_doc()["model"]
    doc["backbone"].update(backbone)
    return from_dict(OWModelConfig, doc, "ow-tiny", "model").validate()


def tiny_model(seed: int = 0, **backbone: Any) -> PanOWModel:
    """A seeded tiny PanOWModel whose state stream is non-zero (so the state reaches g)."""
    torch.manual_seed(seed)
    model = PanOWModel(tiny_model_config(**backbone))
    with torch.no_grad():
        for name, p in model.decoder.transformer.named_parameters():
            if ".state_attn.to_out" in name:
                p.normal_(0.0, 0.5)
    return model.eval()
