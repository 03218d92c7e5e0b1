"""Flow estimators: the registry, Farneback's options, video_flow's checks, SEA-RAFT's loading."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from panbench import weights
from panbench.errors import ConfigError, ContractError, UnknownNameError
from panbench.io import sha256_file
from panbench.metrics import flow as flow_module
from panbench.metrics import sea_raft as sea_raft_module
from panbench.metrics import smoothness as smoothness_module
from panbench.metrics.flow import (
    FLOW_ESTIMATORS,
    FarnebackFlow,
    FlowEstimator,
    estimator_provenance,
    make_flow_estimator,
    video_flow,
)
from panbench.metrics.sea_raft import (
    SEA_RAFT_WEIGHTS,
    SeaRaft,
    SeaRaftConfig,
    SeaRaftFlow,
    load_sea_raft_state,
    sea_raft_weights_entry,
)

pytest.importorskip("cv2")

# A few thousand parameters: the spring-M architecture with thin layers, one block per stage.
TINY = SeaRaftConfig(
    dim=8, initial_dim=8, block_dims=(8, 8, 16), stage_blocks=(1, 1, 2), num_blocks=1, iters=2
)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> tuple[Path, str]:
    """A randomly initialised tiny SEA-RAFT saved as a torch state dict, with its sha256."""
    torch.manual_seed(0)
    path = tmp_path / "sea_raft_tiny.pth"
    torch.save(SeaRaft(TINY).state_dict(), path)
    return path, sha256_file(path)


@pytest.fixture
def isolated_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "home"
    monkeypatch.setenv("PANBENCH_HOME", str(cache))
    monkeypatch.delenv("PANBENCH_WEIGHTS_SEA_RAFT_SPRING_M", raising=False)
    return cache / "weights"


def test_registry_lists_both_estimators_and_suggests_names() -> None:
    assert {"farneback", "sea-raft"} <= set(FLOW_ESTIMATORS.names())
    with pytest.raises(UnknownNameError, match="Did you mean: farneback"):
        make_flow_estimator("farnebak")


def test_make_farneback_with_options_and_bad_options() -> None:
    est = make_flow_estimator("farneback", levels=3, winsize=21)
    assert isinstance(est, FlowEstimator) and est.name == "farneback"
    provenance = estimator_provenance(est)
    assert provenance["name"] == "farneback"
    assert provenance["options"]["levels"] == 3 and provenance["options"]["winsize"] == 21
    with pytest.raises(ConfigError, match="Bad options for flow estimator 'farneback'"):
        make_flow_estimator("farneback", window=3)
    with pytest.raises(ConfigError, match="pyr_scale"):
        FarnebackFlow(pyr_scale=1.5)
    with pytest.raises(ConfigError, match="levels"):
        FarnebackFlow(levels=0)


def test_missing_opencv_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install panbench\[wr\]"):
        make_flow_estimator("farneback")


def test_farneback_rejects_mismatched_frames() -> None:
    a = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(ContractError, match="same shape"):
        FarnebackFlow()(a, np.zeros((16, 17, 3), dtype=np.uint8))
    with pytest.raises(ContractError, match=r"\[H, W, 3\]"):
        FarnebackFlow()(a[..., 0], a[..., 0])


def test_video_flow_checks_what_the_estimator_returns() -> None:
    video = np.zeros((3, 8, 8, 3), dtype=np.uint8)

    def wrong_shape(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return np.zeros((8, 8), dtype=np.float32)

    def not_finite(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return np.full((8, 8, 2), np.nan, dtype=np.float32)

    with pytest.raises(ContractError, match=r"float \[H, W, 2\].*\(8, 8\)"):
        video_flow(video, wrong_shape)  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="NaN"):
        video_flow(video, not_finite)  # type: ignore[arg-type]


def test_video_flow_pairs_consecutive_frames() -> None:
    video = np.stack([np.full((4, 4, 3), 10 * t, dtype=np.uint8) for t in range(4)])

    def level_difference(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        out = np.zeros((4, 4, 2), dtype=np.float32)
        out[..., 0] = float(nxt[0, 0, 0]) - float(prev[0, 0, 0])
        out[..., 1] = float(prev[0, 0, 0])
        return out

    got = video_flow(video, level_difference)  # type: ignore[arg-type]
    assert got.shape == (3, 4, 4, 2) and got.dtype == np.float32
    assert got[:, 0, 0, 0].tolist() == [10.0, 10.0, 10.0]
    assert got[:, 0, 0, 1].tolist() == [0.0, 10.0, 20.0]  # pair t starts at frame t


def test_sea_raft_loads_checked_weights_and_gives_flow(tiny_checkpoint, isolated_weights) -> None:
    path, digest = tiny_checkpoint
    est = make_flow_estimator("sea-raft", path=path, sha256=digest, config=TINY)
    assert estimator_provenance(est)["name"] == "sea-raft"
    assert estimator_provenance(est)["options"]["sha256"] == digest
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (256, 264, 3), dtype=np.uint8)
    flow = est(a, np.roll(a, 2, axis=1))
    assert flow.shape == (256, 264, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    np.testing.assert_array_equal(flow, est(a, np.roll(a, 2, axis=1)))  # deterministic


def test_sea_raft_flow_is_in_pixels_of_the_input_frame(tiny_checkpoint, isolated_weights) -> None:
    # With only the flow head's bias set, every iteration adds the same coarse flow c; the
    # convex upsampling multiplies by 8 and undoing scale = -1 by another 2. (The outer ring of
    # coarse pixels mixes in the upsampler's zero padding, so only the interior is exact.)
    path, _ = tiny_checkpoint
    state = torch.load(path, weights_only=True)
    for key in state:
        if key.startswith("flow_head.2."):
            state[key] = torch.zeros_like(state[key])
    state["flow_head.2.bias"][0] = 0.25
    state["flow_head.2.bias"][1] = -0.125
    edited = path.with_name("edited.pth")
    torch.save(state, edited)
    frame = np.zeros((256, 256, 3), dtype=np.uint8)
    for scale, factor in ((-1, 16.0), (0, 8.0)):
        cfg = SeaRaftConfig(**{**TINY.__dict__, "scale": scale})
        est = SeaRaftFlow(path=edited, sha256=sha256_file(edited), config=cfg)
        flow = est(frame, frame)
        steps = cfg.iters + 1  # the initial estimate and one update per iteration
        inner = flow[24:-24, 24:-24]
        np.testing.assert_allclose(inner[..., 0], 0.25 * steps * factor, rtol=1e-5)
        np.testing.assert_allclose(inner[..., 1], -0.125 * steps * factor, rtol=1e-5)


def test_sea_raft_checksum_mismatch(tiny_checkpoint, isolated_weights) -> None:
    path, _ = tiny_checkpoint
    with pytest.raises(weights.WeightsError, match="failed its sha256 check"):
        SeaRaftFlow(path=path, sha256="0" * 64, config=TINY)
    with pytest.raises(ConfigError, match="64 hex digits"):
        SeaRaftFlow(path=path, sha256="abc", config=TINY)


def test_sea_raft_missing_file_says_where_to_get_it(isolated_weights, tmp_path: Path) -> None:
    with pytest.raises(weights.WeightsError, match=r"not found.*wget https://huggingface.co"):
        SeaRaftFlow(path=tmp_path / "absent.pth", sha256="0" * 64, config=TINY)


def test_sea_raft_without_a_pin_explains_how_to_give_one(isolated_weights) -> None:
    assert SEA_RAFT_WEIGHTS not in weights.WEIGHTS
    with pytest.raises(weights.WeightsError, match=r"pins no sha256.*sha256="):
        make_flow_estimator("sea-raft", config=TINY)


def test_sea_raft_found_through_a_registered_pin_and_env_var(
    tiny_checkpoint, isolated_weights, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, digest = tiny_checkpoint
    monkeypatch.setenv("PANBENCH_WEIGHTS_SEA_RAFT_SPRING_M", str(path))
    with weights.registered(sea_raft_weights_entry(digest)):
        est = SeaRaftFlow(config=TINY)
    assert est.sha256 == digest
    assert SEA_RAFT_WEIGHTS not in weights.WEIGHTS  # the pin was scoped to the block


def test_sea_raft_state_dict_checks(tiny_checkpoint) -> None:
    path, _ = tiny_checkpoint
    state = torch.load(path, weights_only=True)
    net = SeaRaft(TINY)
    load_sea_raft_state(net, {f"module.{k}": v for k, v in state.items()})  # DataParallel
    torch.testing.assert_close(net.state_dict()["fnet.conv1.weight"], state["fnet.conv1.weight"])
    # the shortcut BN is stored under both of its names, as in upstream checkpoints
    assert "cnet.layer3.0.bn3.weight" in state and "cnet.layer3.0.downsample.1.weight" in state
    with pytest.warns(UserWarning, match="does not use"):
        load_sea_raft_state(SeaRaft(TINY), {**state, "extra.weight": torch.zeros(1)})
    partial = dict(state)
    del partial["init_conv.weight"]
    with pytest.raises(weights.WeightsError, match=r"1 missing tensors \(init_conv\.weight"):
        load_sea_raft_state(SeaRaft(TINY), partial)
    with pytest.raises(weights.WeightsError, match="wrong shape"):
        load_sea_raft_state(SeaRaft(SeaRaftConfig(**{**TINY.__dict__, "dim": 16})), state)


def test_spring_m_parameter_names_and_count() -> None:
    # The published spring-M network: ResNet-34-style encoders, dim 128; 472 state-dict tensors
    # (checked against upstream's RAFT class built from spring-M.json).
    net = SeaRaft()
    state = net.state_dict()
    assert len(state) == 472
    assert tuple(state["update_block.encoder.convc1.weight"].shape) == (256, 324, 1, 1)
    assert tuple(state["upsample_weight.2.weight"].shape) == (576, 256, 1, 1)
    assert tuple(state["cnet.conv1.weight"].shape) == (64, 6, 7, 7)
    assert len(net.cnet.layer3) == 6 and len(net.update_block.refine) == 2


def test_sea_raft_rejects_frames_too_small_for_its_pyramid(tiny_checkpoint) -> None:
    path, digest = tiny_checkpoint
    est = SeaRaftFlow(path=path, sha256=digest, config=TINY)
    frame = np.zeros((128, 128, 3), dtype=np.uint8)  # half size 64: coarsest level 1 px
    with pytest.raises(ContractError, match="too small"):
        est(frame, frame)


@pytest.mark.parametrize("module", [flow_module, smoothness_module, sea_raft_module])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0
