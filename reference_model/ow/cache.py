"""Cached decoder features (VAE latents, umT5 embeddings) of training windows, sharded on disk.

Both training stages of the open-weights recipe read the frozen encoders' outputs from here
instead of running Wan's VAE and umT5 every step. The cache is built once per (episode folder,
encoders, window settings) and refused when any of them changes.

Windows. An episode of T frames has T-1 actions; ``frames_per_action`` (m) consecutive steps make
one chunk, so it has ``(T-1) // m`` chunks. A window is ``chunks_per_window`` (K) consecutive
chunks starting at chunk ``start`` (starts ``0, stride, 2*stride, ...``): the conditioning frame
is frame ``start*m``; chunk k's m frames ``(start+k)*m + 1 .. (start+k+1)*m`` are resampled in
time to the decoder's ``pixel_frames`` per chunk (nearest frame: ``src = ceil((i+1)*m/P) - 1``,
so with m = 1 a chunk holds its one new frame repeated, and the last pixel frame of every chunk
is the episode frame at the chunk's end); its language action is the text of its steps' actions,
distinct consecutive texts joined by ``"; "``. The conditioning frame plus the K chunks
(``1 + K*pixel_frames`` frames) are encoded as one video, so the latent has
``1 + K*chunk_frames`` frames and latent frame 0 is the conditioning frame encoded alone.

Layout of a cache folder::

    index.json              format, format_version, key (+ key_sha256), shard_size, windows,
                            shards [{file, sha256, bytes, windows}], complete
    shard-00000.safetensors
    shard-00001.safetensors ...

``key`` holds ``encoders`` (sha256 over the VAE's and umT5's config and every tensor; see
:func:`encoder_fingerprint`), ``settings`` (resolution, frames_per_action, pixel_frames,
chunks_per_window, window_stride, dtype) and ``source`` (the sha256 of the episode folder's
``index.json``). A shard holds ``shard_size`` windows (the last one fewer), in window order:

- ``latents``: [n, C, 1 + K*chunk_frames, h, w] (``dtype``), the normalised VAE latents.
- ``frames``: uint8 [n, K, H, W, 3], the frame at the start of each chunk (the backbone's
  observations in stage 2, at the model's resolution).
- ``text_ids``: int64 [n, K], each chunk's row in the shard's text table.
- ``text.<j>``: [L_j, D] (``dtype``), umT5's embedding of the shard's text j, cut to its
  L_j real tokens (the reader pads with zeros and returns the mask).
- metadata ``panbench``: JSON ``{"texts": [...], "windows": [{"episode", "hash", "start"}]}``.

Writes are atomic (:mod:`panbench.io`): each shard, then ``index.json`` listing it. An interrupted
build resumes from the shards the index lists; ``complete`` turns true after the last one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from panbench.errors import ConfigError, DataError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CacheSettings",
    "FeatureCache",
    "WindowRef",
    "build_cache",
    "cache_key",
    "chunk_text",
    "encoder_fingerprint",
    "enumerate_windows",
    "resample_chunk",
]

FORMAT_NAME = "panbench-ow-features"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
_META_KEY = "panbench"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

#: encode_video: float [B, T, 3, H, W] in [-1, 1] -> latents float [B, C, t, h, w]
VideoEncoder = Callable[[torch.Tensor], torch.Tensor]
#: encode_text: B texts -> (embeddings float [B, L, D], mask bool [B, L])
TextEncoder = Callable[[Sequence[str]], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class CacheSettings:
    """How windows are cut from episodes and stored (part of the cache key).

    Attributes:
        resolution: square frame side the frames are resized to before encoding.
        frames_per_action: m, episode steps per chunk.
        pixel_frames: frames per chunk the VAE expects (its temporal factor x chunk_frames).
        chunks_per_window: K, chunks per training window.
        window_stride: chunks between window starts (K: windows share only a boundary frame).
        dtype: storage dtype of latents and text embeddings (float32, bfloat16 or float16).
    """

    resolution: int
    frames_per_action: int
    pixel_frames: int
    chunks_per_window: int
    window_stride: int
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("resolution", "frames_per_action", "pixel_frames", "chunks_per_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"Cache settings: expected {name} >= 1, but got {value!r}.")
        if self.window_stride < 1:
            raise ConfigError(
                f"Cache settings: expected window_stride >= 1, but got {self.window_stride}."
            )
        if self.dtype not in _DTYPES:
            raise ConfigError(
                f"Cache settings: expected dtype in {sorted(_DTYPES)}, but got {self.dtype!r}."
            )

    @property
    def window_frames(self) -> int:
        """Episode frames one window spans: ``K*m + 1``."""
        return self.chunks_per_window * self.frames_per_action + 1


@dataclass(frozen=True)
class WindowRef:
    """One window of the cache: episode position in the folder, its hash and first chunk."""

    episode: int
    hash: str
    start: int


# ------------------------------------------------------------------------------------ windows
def resample_chunk(m: int, pixel_frames: int) -> list[int]:
    """Offsets (0..m-1) of the episode frames that fill a chunk of ``pixel_frames`` frames.

    Nearest frame in time, ``ceil((i+1)*m/P) - 1``: the last pixel frame is always the chunk's
    last episode frame; with m = 1 every pixel frame is that one frame.
    """
    return [math.ceil((i + 1) * m / pixel_frames) - 1 for i in range(pixel_frames)]


def chunk_text(texts: Sequence[str]) -> str:
    """The language action of a chunk from its steps' texts: distinct runs joined by ``"; "``."""
    runs: list[str] = []
    for t in texts:
        if not runs or runs[-1] != t:
            runs.append(t)
    return "; ".join(runs)


def enumerate_windows(
    lengths: Sequence[int], hashes: Sequence[str], settings: CacheSettings
) -> list[WindowRef]:
    """Every window of a folder whose episodes have ``lengths`` frames, in cache order."""
    m, k = settings.frames_per_action, settings.chunks_per_window
    refs = []
    for e, (n, h) in enumerate(zip(lengths, hashes, strict=True)):
        chunks = (int(n) - 1) // m
        refs += [WindowRef(e, h, s) for s in range(0, chunks - k + 1, settings.window_stride)]
    return refs


def _window_pixels(
    frames: np.ndarray, actions: Sequence[Mapping[str, Any]], start: int, s: CacheSettings
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Video uint8 [1 + K*P, H, W, 3], chunk-start frames uint8 [K, H, W, 3] and K texts."""
    from panbench.data.frames import resize_frames

    m, k = s.frames_per_action, s.chunks_per_window
    first = start * m
    offsets = resample_chunk(m, s.pixel_frames)
    index = [first]
    texts = []
    for c in range(k):
        base = first + c * m
        index += [base + 1 + o for o in offsets]
        texts.append(chunk_text([str(a.get("text", "")) for a in actions[base : base + m]]))
    starts = [first + c * m for c in range(k)]
    video = resize_frames(np.ascontiguousarray(frames[index]), s.resolution, mode="center-crop")
    obs = resize_frames(np.ascontiguousarray(frames[starts]), s.resolution, mode="center-crop")
    return video, obs, texts


# ------------------------------------------------------------------------------------ keys
def encoder_fingerprint(modules: Mapping[str, nn.Module], extra: Any = None) -> str:
    """sha256 over the modules' configs and every tensor of their state dicts (names, bytes).

    Args:
        modules: e.g. ``{"vae": ..., "text_encoder": ...}``; a module's ``config`` (diffusers or
            transformers) is hashed as JSON when it has one.
        extra: anything JSON-serialisable that also decides the features (tokenizer settings).
    """
    h = hashlib.sha256()
    for name in sorted(modules):
        module = modules[name]
        config = getattr(module, "config", None)
        if config is not None:
            as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
            as_dict = {k: v for k, v in as_dict.items() if not str(k).startswith("_")}
            h.update(json.dumps([name, as_dict], sort_keys=True, default=str).encode())
        for key, tensor in sorted(module.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{name}.{key}:{t.dtype}:{list(t.shape)}".encode())
            # bf16 has no numpy dtype: hash the raw bytes through a same-sized integer view.
            h.update(t.flatten().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


def cache_key(encoders: str, settings: CacheSettings, source_index: Path) -> dict[str, Any]:
    """The key a cache is built and read under (see the module docstring)."""
    from panbench.io import sha256_file

    return {
        "encoders": encoders,
        "settings": dataclasses.asdict(settings),
        "source": sha256_file(source_index),
    }


def _key_sha(key: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _read_index(root: Path) -> dict[str, Any] | None:
    file = root / INDEX_FILE
    if not file.is_file():
        return None
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"Feature cache index {file} is not readable JSON: {err}.") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise DataError(f"{file} is not a {FORMAT_NAME} index (format {doc.get('format')!r}).")
    if doc.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{file}: expected format_version {FORMAT_VERSION}, but got "
            f"{doc.get('format_version')!r}; rebuild the cache in a new folder."
        )
    return doc


def _stale(root: Path, doc: Mapping[str, Any], key: Mapping[str, Any]) -> DataError:
    old = doc.get("key", {})
    parts = [p for p in ("encoders", "settings", "source") if old.get(p) != key.get(p)]
    what = {
        "encoders": "the VAE / umT5 weights or configs",
        "settings": "the window settings",
        "source": "the episode folder",
    }
    changed = ", ".join(what[p] for p in parts) or "its key"
    return DataError(
        f"Feature cache {root} is stale: it was built for different {changed} (key "
        f"{doc.get('key_sha256', '?')[:12]} vs {_key_sha(key)[:12]} now). Delete the folder or "
        "set train.cache_dir to a new one."
    )


# ------------------------------------------------------------------------------------ writing
def _shard_bytes(
    latents: list[torch.Tensor],
    obs: list[np.ndarray],
    texts: list[list[str]],
    embeds: dict[str, torch.Tensor],
    refs: Sequence[WindowRef],
    dtype: torch.dtype,
) -> bytes:
    from safetensors.torch import save

    table = list(dict.fromkeys(t for row in texts for t in row))  # first use order, no repeats
    tensors = {
        "latents": torch.stack(latents).to(dtype).contiguous(),
        "frames": torch.from_numpy(np.stack(obs)).contiguous(),
        "text_ids": torch.tensor([[table.index(t) for t in row] for row in texts]),
    }
    for j, t in enumerate(table):
        tensors[f"text.{j}"] = embeds[t].to(dtype).contiguous()
    meta = {"texts": table, "windows": [dataclasses.asdict(r) for r in refs]}
    return save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})


def build_cache(
    out: str | Path,
    episodes: str | Path,
    settings: CacheSettings,
    encoders: str,
    encode_video: VideoEncoder,
    encode_text: TextEncoder,
    *,
    shard_size: int = 64,
    progress: Callable[[str], None] | None = None,
) -> FeatureCache:
    """Builds (or resumes, or reuses) the feature cache of an episode folder.

    Args:
        out: the cache folder.
        episodes: a panbench episode folder (``panbench data generate`` / ``import-videos``).
        settings: how windows are cut and stored.
        encoders: the frozen encoders' fingerprint (:func:`encoder_fingerprint`).
        encode_video: frames float [1, T, 3, H, W] in [-1, 1] -> latents [1, C, t, h, w].
        encode_text: texts -> (embeddings [B, L, D], mask bool [B, L]).
        shard_size: windows per shard.
        progress: called with a line per shard written.

    Returns:
        The complete cache, opened for reading.

    Raises:
        DataError: ``out`` holds a cache built under another key (stale), or the episodes have
            no window of ``settings.window_frames`` frames.
    """
    from panbench.data import EpisodeDataset
    from panbench.io import atomic_write_bytes, atomic_write_json, sha256_file

    if shard_size < 1:
        raise ConfigError(f"Expected shard_size >= 1, but got {shard_size}.")
    root = Path(out)
    dataset = EpisodeDataset(episodes)
    key = cache_key(encoders, settings, dataset.root / "index.json")
    doc = _read_index(root)
    if doc is not None and doc.get("key_sha256") != _key_sha(key):
        raise _stale(root, doc, key)
    if doc is not None and doc.get("complete"):
        return FeatureCache(root, key)
    eps = dataset.index.episodes
    refs = enumerate_windows([e.num_frames for e in eps], [e.hash for e in eps], settings)
    if not refs:
        raise DataError(
            f"No training window in {dataset.root}: a window needs {settings.window_frames} "
            f"frames (chunks_per_window x frames_per_action + 1), but the longest episode has "
            f"{max(e.num_frames for e in eps)}."
        )
    if doc is None or doc.get("shard_size") != shard_size:
        doc = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "key": key,
            "key_sha256": _key_sha(key),
            "shard_size": shard_size,
            "windows": len(refs),
            "shards": [],
            "complete": False,
        }
    root.mkdir(parents=True, exist_ok=True)
    dtype = _DTYPES[settings.dtype]
    shards: list[dict[str, Any]] = list(doc["shards"])
    # Keep only the shards that are really there and intact (a crash after the index was
    # written but before fsync could in principle lose one).
    shards = [
        s
        for s in shards
        if (root / s["file"]).is_file() and sha256_file(root / s["file"]) == s["sha256"]
    ]
    for number in range(len(shards), math.ceil(len(refs) / shard_size)):
        part = refs[number * shard_size : (number + 1) * shard_size]
        latents, obs, texts = [], [], []
        embeds: dict[str, torch.Tensor] = {}
        for ref in part:
            rec = dataset.record(ref.episode)
            video, starts, row = _window_pixels(rec.frames, rec.actions, ref.start, settings)
            x = torch.from_numpy(video).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
            with torch.no_grad():
                latents.append(encode_video(x[None])[0].detach().cpu())
                new = [t for t in dict.fromkeys(row) if t not in embeds]
                if new:
                    emb, mask = encode_text(new)
                    for t, e, mk in zip(new, emb, mask, strict=True):
                        embeds[t] = e[: int(mk.sum())].detach().cpu()
            obs.append(starts)
            texts.append(row)
        file = f"shard-{number:05d}.safetensors"
        data = _shard_bytes(latents, obs, texts, embeds, part, dtype)
        atomic_write_bytes(root / file, data)
        digest = hashlib.sha256(data).hexdigest()
        shards.append({"file": file, "sha256": digest, "bytes": len(data), "windows": len(part)})
        doc["shards"] = shards
        doc["complete"] = sum(s["windows"] for s in shards) == len(refs)
        atomic_write_json(root / INDEX_FILE, doc)
        if progress is not None:
            progress(f"cached shard {number + 1} ({sum(s['windows'] for s in shards)}/{len(refs)})")
    return FeatureCache(root, key)


# ------------------------------------------------------------------------------------ reading
class FeatureCache:
    """A complete feature cache, read shard by shard (small LRU, sha256 checked on first read).

    Args:
        root: the cache folder.
        key: the key the caller's encoders and settings give (:func:`cache_key`); a cache built
            under another key is refused. None skips the check (inspection only).

    Raises:
        DataError: missing, incomplete, stale or corrupt cache (the message names the file).
    """

    def __init__(self, root: str | Path, key: Mapping[str, Any] | None, cache_shards: int = 2):
        self.root = Path(root)
        doc = _read_index(self.root)
        if doc is None:
            raise DataError(f"No feature cache in {self.root} (looked for {INDEX_FILE}).")
        if key is not None and doc.get("key_sha256") != _key_sha(key):
            raise _stale(self.root, doc, key)
        if not doc.get("complete"):
            raise DataError(
                f"Feature cache {self.root} is incomplete ({len(doc['shards'])} shard(s)); "
                "building it again resumes it."
            )
        self.doc = doc
        self.settings = CacheSettings(**doc["key"]["settings"])
        self.shard_size = int(doc["shard_size"])
        self._cache_shards = cache_shards
        self._loaded: OrderedDict[int, tuple[dict[str, torch.Tensor], dict[str, Any]]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return int(self.doc["windows"])

    def _shard(self, number: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        from safetensors import SafetensorError, safe_open

        if number in self._loaded:
            self._loaded.move_to_end(number)
            return self._loaded[number]
        info = self.doc["shards"][number]
        file = self.root / info["file"]
        if not file.is_file():
            raise DataError(f"Feature cache shard {file} is missing (listed in {INDEX_FILE}).")
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise DataError(
                f"Feature cache shard {file} is corrupt (sha256 differs from {INDEX_FILE})."
            )
        try:
            from safetensors.torch import load

            tensors = load(data)
            with safe_open(str(file), "pt") as f:
                meta = json.loads((f.metadata() or {})[_META_KEY])
        except (SafetensorError, KeyError, ValueError) as err:
            raise DataError(f"Feature cache shard {file} is unreadable: {err}.") from err
        self._loaded[number] = (tensors, meta)
        while len(self._loaded) > self._cache_shards:
            self._loaded.popitem(last=False)
        return tensors, meta

    def window(self, i: int) -> dict[str, Any]:
        """Window ``i``: latents [C, t, h, w], frames uint8 [K, H, W, 3], K texts, K embeddings."""
        if not 0 <= i < len(self):
            raise IndexError(f"Window {i} is out of range for {len(self)} cached windows.")
        tensors, meta = self._shard(i // self.shard_size)
        j = i % self.shard_size
        ids = tensors["text_ids"][j].tolist()
        return {
            "latents": tensors["latents"][j],
            "frames": tensors["frames"][j],
            "texts": [meta["texts"][t] for t in ids],
            "embeddings": [tensors[f"text.{t}"] for t in ids],
            "ref": WindowRef(**meta["windows"][j]),
        }

    def batch(
        self,
        indices: Sequence[int],
        text_len: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> dict[str, Any]:
        """Windows ``indices`` stacked; text embeddings zero-padded to ``text_len`` tokens.

        Args:
            indices: window numbers.
            text_len: the length the decoder reads (Wan attends over every position, zero
                padding included, so it must be the decoder's ``text_len``); default: the
                longest text in the batch.
            dtype: dtype of the float outputs.

        Returns:
            ``latents`` [B, C, t, h, w], ``frames`` uint8 [B, K, H, W, 3], ``text``
            [B, K, L, D], ``text_mask`` bool [B, K, L], ``texts`` (B lists of K strings).
        """
        items = [self.window(int(i)) for i in indices]
        longest = max(1, *(e.shape[0] for it in items for e in it["embeddings"]))
        if text_len is not None:
            if longest > text_len:
                raise DataError(
                    f"Feature cache {self.root}: a cached text has {longest} tokens, more than "
                    f"the decoder's text_len {text_len}."
                )
            longest = text_len
        dim = items[0]["embeddings"][0].shape[-1]
        k = len(items[0]["texts"])
        text = torch.zeros(len(items), k, longest, dim, dtype=dtype)
        mask = torch.zeros(len(items), k, longest, dtype=torch.bool)
        for b, it in enumerate(items):
            for c, e in enumerate(it["embeddings"]):
                text[b, c, : e.shape[0]] = e.to(dtype)
                mask[b, c, : e.shape[0]] = True
        return {
            "latents": torch.stack([it["latents"] for it in items]).to(dtype),
            "frames": torch.stack([it["frames"] for it in items]),
            "text": text,
            "text_mask": mask,
            "texts": [it["texts"] for it in items],
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self.window(i) for i in range(len(self)))
