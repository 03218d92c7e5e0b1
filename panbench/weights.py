"""Pinned pretrained weights: a registry of files, the local cache, sha256 checks and `pull`.

Nothing here downloads unless :func:`pull` is called (``panbench weights pull NAME``). Every
file is found in this order and checked against its pinned sha256 before it is used:

1. an explicit ``path=`` argument;
2. the environment variable named by :attr:`WeightsEntry.env_var`
   (for example ``PANBENCH_WEIGHTS_I3D_TORCHSCRIPT=/data/i3d_torchscript.pt``);
3. the cache, ``$PANBENCH_HOME/weights/<filename>`` (default ``~/.cache/panbench/weights``).

Example:
    >>> from panbench import weights
    >>> weights.get_entry("i3d-torchscript").env_var
    'PANBENCH_WEIGHTS_I3D_TORCHSCRIPT'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.io import atomic_open, sha256_file
from panbench.registry import Registry

__all__ = [
    "WEIGHTS",
    "WeightsEntry",
    "WeightsError",
    "cache_path",
    "describe",
    "get_entry",
    "load_state_dict",
    "load_torchscript",
    "pull",
    "register",
    "registered",
    "resolve",
    "verify",
    "weights_dir",
]


class WeightsError(PanbenchError):
    """A weights file is missing, fails its sha256 check, or could not be downloaded."""


@dataclass(frozen=True)
class WeightsEntry:
    """One pinned file.

    Attributes:
        name: registry name used on the command line (``i3d-torchscript``).
        filename: file name inside the cache folder.
        description: what the file is and what uses it.
        licence: the licence the file is distributed under (an SPDX id where there is one).
        licence_notes: provenance and terms beyond the licence id.
        size: size in bytes, or None when not pinned.
        sha256: full lowercase hex digest, or None while only ``sha256_prefix`` is known.
        sha256_prefix: a leading part of the digest (torchvision file names carry 8 hex digits).
        hf_repo: Hugging Face repository holding a copy, or None.
        hf_filename: file name inside ``hf_repo``.
        hf_revision: the commit of ``hf_repo`` to download (pinned, never a branch).
        urls: plain HTTPS fallbacks, tried in order after Hugging Face.
    """

    name: str
    filename: str
    description: str
    licence: str
    licence_notes: str = ""
    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    hf_repo: str | None = None
    hf_filename: str | None = None
    hf_revision: str | None = None
    urls: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.sha256 is None and not self.sha256_prefix:
            raise ValueError(f"Weights entry {self.name!r} pins neither sha256 nor a prefix.")
        if self.sha256 and self.sha256_prefix and not self.sha256.startswith(self.sha256_prefix):
            raise ValueError(f"Weights entry {self.name!r}: sha256 does not start with its prefix.")

    @property
    def env_var(self) -> str:
        """The environment variable that points this entry at a local file."""
        return "PANBENCH_WEIGHTS_" + self.name.upper().replace("-", "_").replace(".", "_")

    @property
    def pinned(self) -> str:
        """The pinned digest as shown to people: the full hash, or ``prefix...``."""
        return self.sha256 if self.sha256 else f"{self.sha256_prefix}..."

    def matches(self, digest: str) -> bool:
        """Whether a full sha256 hex digest agrees with what this entry pins."""
        digest = digest.lower()
        if self.sha256 is not None:
            return digest == self.sha256.lower()
        return digest.startswith(str(self.sha256_prefix).lower())


WEIGHTS: Registry[WeightsEntry] = Registry("weights file")

_TORCHVISION_NOTES = "torchvision model zoo; trained on ImageNet, see the ImageNet terms of access"

for _entry in (
    WeightsEntry(
        name="i3d-torchscript",
        filename="i3d_torchscript.pt",
        description=(
            "Kinetics-400 I3D as TorchScript, the FVD feature detector used by StyleGAN-V "
            "(400-d pre-softmax features)"
        ),
        licence="Apache-2.0",
        licence_notes=(
            "DeepMind kinetics-i3d / TF-Hub i3d-kinetics-400 weights; TorchScript conversion "
            "published with StyleGAN-V (universome/stylegan-v)"
        ),
        size=51_235_320,
        sha256="bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2",
        hf_repo="flateon/FVD-I3D-torchscript",
        hf_filename="i3d_torchscript.pt",
        hf_revision="1c2d61711c52571ad617a1063e6fa691b212e184",
        # The URL StyleGAN-V's src/metrics/frechet_video_distance.py downloads.
        urls=("https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",),
    ),
    WeightsEntry(
        name="alexnet",
        filename="alexnet-owt-7be5be79.pth",
        description="torchvision AlexNet (ImageNet), the LPIPS net='alex' backbone",
        licence="BSD-3-Clause",
        licence_notes=_TORCHVISION_NOTES,
        size=244_408_911,
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        sha256_prefix="7be5be79",
        urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
    ),
    WeightsEntry(
        name="vgg16",
        filename="vgg16-397923af.pth",
        description="torchvision VGG16 (ImageNet), the LPIPS net='vgg' backbone",
        licence="BSD-3-Clause",
        licence_notes=_TORCHVISION_NOTES,
        size=553_433_881,
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        sha256_prefix="397923af",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
    ),
):
    WEIGHTS.register(_entry.name, _entry)


def register(entry: WeightsEntry, override: bool = False) -> None:
    """Adds a pinned file to the registry (plugins; tests pin the files they make).

    Raises:
        ConfigError: ``entry.name`` is taken and ``override`` is False.
    """
    WEIGHTS.register(entry.name, entry, override=override)


@contextlib.contextmanager
def registered(entry: WeightsEntry) -> Iterator[WeightsEntry]:
    """Pins ``entry`` for the duration of a ``with`` block, then restores what was there.

    For evaluating with a file of your own under an existing name (a fine-tuned backbone, a
    test's stand-in detector): the file is still sha256-checked, against the pin you give.
    """
    previous = WEIGHTS.get(entry.name) if entry.name in WEIGHTS else None
    WEIGHTS.register(entry.name, entry, override=True)
    try:
        yield entry
    finally:
        if previous is None:
            WEIGHTS.unregister(entry.name)
        else:
            WEIGHTS.register(entry.name, previous, override=True)


def get_entry(name: str) -> WeightsEntry:
    """Returns the registered entry ``name``; unknown names suggest close ones."""
    return WEIGHTS.get(name)


def weights_dir() -> Path:
    """The cache folder: ``$PANBENCH_HOME/weights``, default ``~/.cache/panbench/weights``."""
    home = os.environ.get("PANBENCH_HOME")
    base = Path(home).expanduser() if home else Path("~/.cache/panbench").expanduser()
    return base / "weights"


def cache_path(name: str) -> Path:
    """Where the cache keeps (or would keep) the file of entry ``name``."""
    return weights_dir() / get_entry(name).filename


# (resolved path, size, mtime_ns) -> sha256: re-hashing 50-500 MB on every metric call is slow,
# and a changed file changes its size or mtime.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _digest_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def verify(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Checks a file against the sha256 (and size) pinned for ``name``.

    Args:
        name: a registered weights name (``panbench weights list``).
        path: the file to check; default: where :func:`resolve` would look.

    Returns:
        The checked path.

    Raises:
        WeightsError: the file is missing, or its size or sha256 differs from the pin
            (the message shows both hashes).
    """
    entry = get_entry(name)
    file = Path(path).expanduser() if path is not None else _locate(entry)[0]
    if not file.is_file():
        raise _missing_error(entry, file, "explicit path" if path is not None else None)
    digest = _digest_cached(file)
    if not entry.matches(digest):
        size = file.stat().st_size
        size_note = (
            f" Its size is {size} bytes; the pinned size is {entry.size} bytes."
            if entry.size is not None and size != entry.size
            else ""
        )
        raise WeightsError(
            f"Weights file {file} for {name!r} failed its sha256 check: expected "
            f"{entry.pinned}, but got {digest}.{size_note} Delete it and run "
            f"`panbench weights pull {name}`, or point {entry.env_var} at the right file."
        )
    return file


def _locate(entry: WeightsEntry, path: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The file to use for ``entry`` and where that choice came from."""
    if path is not None:
        return Path(path).expanduser(), "explicit path"
    env = os.environ.get(entry.env_var)
    if env:
        return Path(env).expanduser(), f"environment variable {entry.env_var}"
    return weights_dir() / entry.filename, "cache"


def _missing_error(entry: WeightsEntry, file: Path, origin: str | None) -> WeightsError:
    cached = weights_dir() / entry.filename
    if origin is not None and origin != "cache":
        return WeightsError(
            f"Weights file for {entry.name!r} not found at {file} (given by the {origin}). "
            f"Fix the path, or unset it and run `panbench weights pull {entry.name}` to use "
            f"the cache at {cached}."
        )
    return WeightsError(
        f"Weights file for {entry.name!r} not found at {cached}. Run "
        f"`panbench weights pull {entry.name}` (needs network), or copy {entry.filename} "
        f"(sha256 {entry.pinned}) to {cached}, or set {entry.env_var} to its path."
    )


def resolve(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Finds the verified local file for ``name``, never downloading.

    Args:
        name: a registered weights name.
        path: an explicit file that overrides the environment variable and the cache.

    Returns:
        The path of a file whose sha256 matches the pin.

    Raises:
        WeightsError: the file is missing (the message gives the `pull` command and the cache
            path a manually copied file would be found at) or fails its sha256 check.
    """
    entry = get_entry(name)
    file, origin = _locate(entry, path)
    if not file.is_file():
        raise _missing_error(entry, file, origin)
    return verify(name, file)


def _write_verified(entry: WeightsEntry, chunks: Iterable[bytes], dest: Path) -> Path:
    """Streams ``chunks`` to a temporary file next to ``dest``, hashing as it goes; renames it
    onto ``dest`` only if the sha256 matches the pin (otherwise nothing is left behind)."""
    digest = hashlib.sha256()
    with atomic_open(dest, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
        if not entry.matches(digest.hexdigest()):
            raise WeightsError(
                f"Downloaded {entry.filename} failed its sha256 check: expected {entry.pinned}, "
                f"but got {digest.hexdigest()}. Nothing was written to {dest}."
            )
    return dest


def _read_chunks(stream: Any, size: int = 1 << 20) -> Iterable[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _from_hf(entry: WeightsEntry, dest: Path) -> Path:
    from huggingface_hub import hf_hub_download

    # Download into a scratch folder beside the cache (same filesystem), then copy through the
    # verifying writer; the scratch folder and the Hugging Face metadata in it are removed.
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=dest.parent) as tmpdir:
        got = hf_hub_download(
            repo_id=str(entry.hf_repo),
            filename=str(entry.hf_filename),
            revision=entry.hf_revision,
            local_dir=tmpdir,
        )
        with open(got, "rb") as src:
            return _write_verified(entry, _read_chunks(src), dest)


def _from_url(entry: WeightsEntry, url: str, dest: Path) -> Path:
    request = urllib.request.Request(url, headers={"User-Agent": "panbench"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return _write_verified(entry, _read_chunks(response), dest)


def pull(name: str, force: bool = False, log: Callable[[str], Any] | None = None) -> Path:
    """Downloads ``name`` into the cache unless a verified copy is already there.

    Hugging Face (pinned revision) is tried first, then each URL. Each download goes to a
    temporary file in the cache folder, is checked against the pinned sha256, and only then
    renamed onto its final name, so an interrupted or corrupt download never looks finished.

    Args:
        name: a registered weights name.
        force: download again even if a verified copy is cached.
        log: called with one line per attempt (the CLI prints them).

    Returns:
        The cache path of the verified file.

    Raises:
        WeightsError: every source failed; the message lists each failure and where a
            manually downloaded file should be copied.
    """
    entry = get_entry(name)
    dest = weights_dir() / entry.filename
    say = log or (lambda _line: None)
    if dest.is_file() and not force:
        try:
            verify(name, dest)
            say(f"{name}: already in the cache at {dest}")
            return dest
        except WeightsError as err:
            say(f"{name}: cached copy is bad, downloading again ({err})")
    dest.parent.mkdir(parents=True, exist_ok=True)

    attempts: list[tuple[str, Callable[[], Path]]] = []
    if entry.hf_repo and entry.hf_filename:
        attempts.append(
            (
                f"Hugging Face {entry.hf_repo}/{entry.hf_filename}@{entry.hf_revision}",
                lambda: _from_hf(entry, dest),
            )
        )
    for url in entry.urls:
        attempts.append((url, lambda url=url: _from_url(entry, url, dest)))  # type: ignore[misc]

    failures: list[str] = []
    for label, attempt in attempts:
        say(f"{name}: downloading from {label}")
        try:
            path = attempt()
        except Exception as err:  # any source may fail; try the next, report all at the end
            failures.append(f"{label}: {type(err).__name__}: {err}")
            say(f"{name}: failed ({type(err).__name__}: {err})")
            continue
        say(f"{name}: verified sha256 {entry.pinned} and saved to {path}")
        return path
    lines = "\n  ".join(failures) or "(no sources are registered)"
    raise WeightsError(
        f"Could not download {name!r}; every source failed:\n  {lines}\n"
        f"Copy {entry.filename} (sha256 {entry.pinned}) to {dest} by hand, "
        f"or set {entry.env_var} to its path."
    )


def describe(verify_files: bool = False) -> list[dict[str, Any]]:
    """One row per registered file: name, filename, size, sha256, licence, path and status.

    Args:
        verify_files: also hash present files (status ``ok`` or ``bad sha256``); otherwise
            status is ``present`` or ``missing``.
    """
    rows = []
    for name in WEIGHTS.names():
        entry = get_entry(name)
        file, origin = _locate(entry)
        if not file.is_file():
            status = "missing"
        elif verify_files:
            try:
                verify(name, file)
                status = "ok"
            except WeightsError:
                status = "bad sha256"
        else:
            status = "present"
        rows.append(
            {
                "name": name,
                "filename": entry.filename,
                "size": entry.size,
                "sha256": entry.pinned,
                "licence": entry.licence,
                "path": str(file),
                "source": origin,
                "status": status,
            }
        )
    return rows


def load_torchscript(name: str, path: str | os.PathLike[str] | None = None) -> Any:
    """Loads a verified TorchScript file on CPU (``torch.jit.load``), in eval mode.

    Args:
        name: a registered weights name whose file is TorchScript (``i3d-torchscript``).
        path: an explicit file overriding the environment variable and the cache.

    Raises:
        WeightsError: the file is missing or fails its sha256 check.
    """
    import torch

    file = resolve(name, path)
    with warnings.catch_warnings():
        # torch >= 2.9 flags TorchScript as deprecated; published detectors ship only as it.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        module = torch.jit.load(str(file), map_location="cpu")
    return module.eval()


def load_state_dict(name: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Loads a verified state dict with ``torch.load(weights_only=True)`` on CPU.

    Args:
        name: a registered weights name whose file is a state dict (``alexnet``, ``vgg16``).
        path: an explicit file overriding the environment variable and the cache.

    Raises:
        WeightsError: the file is missing or fails its sha256 check.
    """
    import torch

    state = torch.load(str(resolve(name, path)), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise WeightsError(f"Expected {name!r} to hold a state dict, but got {type(state)}.")
    return state
