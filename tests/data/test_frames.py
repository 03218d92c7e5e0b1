"""panbench.data.frames: each resize mode is byte-identical to the code it replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from panbench.data.frames import RESIZE_MODES, resize_frames
from panbench.errors import ConfigError


# ----------------------------------------------------------------- the replaced implementations
# Verbatim copies (modulo names) of the four resizes panbench had before data/frames.py: the
# reference each mode must match byte for byte, so that no per-episode value moves.
def _old_protocols_base(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[-3] == size and frames.shape[-2] == size:
        return frames
    lead = frames.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:])
    x = x.permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    out: np.ndarray = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out.reshape(*lead, size, size, 3)


def _old_videos(frames: np.ndarray, resolution: int) -> np.ndarray:
    _, height, width, _ = frames.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    frames = frames[:, top : top + side, left : left + side]
    if side == resolution:
        return np.ascontiguousarray(frames)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    y = F.interpolate(
        x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _old_diffusers(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[-3] == height and frames.shape[-2] == width:
        return frames
    lead = frames.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:])
    x = x.permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    y = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return y.reshape(*lead, height, width, 3).numpy()


def _old_wr_arena(rgb: np.ndarray, resolution: int, aspect: str) -> np.ndarray:
    h, w = rgb.shape[:2]
    if aspect == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = rgb[top : top + side, left : left + side]
    elif aspect == "pad":
        side = max(h, w)
        square = np.zeros((side, side, 3), dtype=np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = rgb
    else:
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        y = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
        )
        out: np.ndarray = y.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        return np.ascontiguousarray(out)
    return np.ascontiguousarray(_old_protocols_base(np.ascontiguousarray(square), resolution))


# ------------------------------------------------------------------------------------- inputs
SHAPES = [(17, 23), (23, 17), (32, 32), (64, 48), (48, 64), (9, 40), (100, 100), (31, 30)]
SIZES = [8, 16, 32, 45, 64]


def _frames(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("size", SIZES)
def test_squash_matches_the_model_runner_resize(hw: tuple[int, int], size: int) -> None:
    for lead in [(), (3,), (2, 3)]:
        frames = _frames((*lead, *hw), seed=size)
        want = _old_protocols_base(frames, size)
        got = resize_frames(frames, size, mode="squash")
        assert got.dtype == np.uint8 and got.shape == want.shape == (*lead, size, size, 3)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("size", [(16, 24), (32, 32), (45, 20)])
def test_squash_to_a_rectangle_matches_the_diffusers_resize(
    hw: tuple[int, int], size: tuple[int, int]
) -> None:
    frames = _frames((2, 3, *hw), seed=1)
    np.testing.assert_array_equal(
        resize_frames(frames, size, mode="squash"), _old_diffusers(frames, *size)
    )


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("size", SIZES)
def test_center_crop_matches_the_video_import_resize(hw: tuple[int, int], size: int) -> None:
    frames = _frames((4, *hw), seed=2)
    got = resize_frames(frames, size, mode="center-crop")
    np.testing.assert_array_equal(got, _old_videos(frames, size))
    assert got.flags.c_contiguous


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("aspect", "mode"), [("crop", "center-crop"), ("pad", "pad")])
def test_crop_and_pad_match_the_wr_arena_image_rule(
    hw: tuple[int, int], size: int, aspect: str, mode: str
) -> None:
    rgb = _frames(hw, seed=3)
    np.testing.assert_array_equal(
        resize_frames(rgb, size, mode=mode),  # type: ignore[arg-type]
        _old_wr_arena(rgb, size, aspect),
    )


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("size", SIZES)
def test_squash_matches_the_wr_arena_squash_even_at_the_same_size(
    hw: tuple[int, int], size: int
) -> None:
    # The old WR-Arena squash interpolated even a frame already at the size; squash returns it
    # as is, which is the same bytes because the resample is then the identity.
    rgb = _frames(hw, seed=4)
    np.testing.assert_array_equal(
        resize_frames(rgb, size, mode="squash"), _old_wr_arena(rgb, size, "squash")
    )
    same = _frames((size, size), seed=5)
    np.testing.assert_array_equal(
        resize_frames(same, size, mode="squash"), _old_wr_arena(same, size, "squash")
    )


def test_pad_centres_the_frame_on_black() -> None:
    wide = np.full((1, 8, 16, 3), 200, dtype=np.uint8)
    out = resize_frames(wide, 16, mode="pad")
    assert out.shape == (1, 16, 16, 3)
    assert (out[0, 4:12] == 200).all()
    assert (out[0, :4] == 0).all() and (out[0, 12:] == 0).all()


def test_frames_of_the_output_size_come_back_unchanged() -> None:
    frames = _frames((2, 16, 16), seed=6)
    assert resize_frames(frames, 16, mode="squash") is frames
    for mode in RESIZE_MODES:
        np.testing.assert_array_equal(resize_frames(frames, 16, mode=mode), frames)  # type: ignore[arg-type]


def test_bad_modes_and_sizes_are_refused() -> None:
    frames = _frames((2, 8, 8), seed=7)
    with pytest.raises(ConfigError, match="Expected a resize mode in squash, center-crop, pad"):
        resize_frames(frames, 4, mode="crop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"Expected an int size .* but got \(4, 6\)"):
        resize_frames(frames, (4, 6), mode="pad")


def test_center_crop_keeps_flat_colour_and_only_the_middle() -> None:
    flat = np.full((2, 40, 60, 3), (10, 200, 90), np.uint8)
    out = resize_frames(flat, 16, mode="center-crop")
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    assert (out == np.array([10, 200, 90], np.uint8)).all()
    # A wide frame whose outer columns are black keeps only its white middle.
    framed = np.zeros((1, 40, 60, 3), np.uint8)
    framed[:, :, 10:50] = 255
    assert (resize_frames(framed, 20, mode="center-crop") == 255).all()
