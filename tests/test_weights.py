"""Tests for panbench.weights and `panbench weights`: pins, cache, overrides, verified pull, CLI."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panbench import weights
from panbench.cli import main
from panbench.weights import WeightsEntry, WeightsError

PAYLOAD = b"pretend these are network weights\n" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PANBENCH_WEIGHTS_TOY_NET", raising=False)
    return tmp_path / "home" / "weights"


@pytest.fixture
def toy(home: Path) -> Iterator[WeightsEntry]:
    entry = WeightsEntry(
        name="toy-net",
        filename="toy.bin",
        description="test file",
        licence="CC0-1.0",
        size=len(PAYLOAD),
        sha256=DIGEST,
        hf_repo="someone/toy",
        hf_filename="toy.bin",
        hf_revision="0" * 40,
        urls=("https://example.invalid/toy.bin",),
    )
    with weights.registered(entry):
        yield entry


def _put(path: Path, data: bytes = PAYLOAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_registry_pins_the_published_files() -> None:
    i3d = weights.get_entry("i3d-torchscript")
    assert i3d.size == 51_235_320
    assert i3d.sha256 == "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"
    assert (i3d.hf_repo, i3d.hf_filename) == ("flateon/FVD-I3D-torchscript", "i3d_torchscript.pt")
    assert i3d.hf_revision == "1c2d61711c52571ad617a1063e6fa691b212e184"
    assert i3d.env_var == "PANBENCH_WEIGHTS_I3D_TORCHSCRIPT"
    for name, prefix in (("alexnet", "7be5be79"), ("vgg16", "397923af")):
        entry = weights.get_entry(name)
        assert prefix in entry.filename and entry.sha256_prefix == prefix
        assert entry.sha256 is not None and entry.sha256.startswith(prefix)
        assert entry.urls == (f"https://download.pytorch.org/models/{entry.filename}",)


def test_default_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANBENCH_HOME", raising=False)
    assert weights.weights_dir() == Path("~/.cache/panbench/weights").expanduser()


def test_resolve_finds_the_cached_file(toy: WeightsEntry, home: Path) -> None:
    cached = _put(home / "toy.bin")
    assert weights.resolve("toy-net") == cached
    assert weights.cache_path("toy-net") == cached


def test_wrong_hash_is_refused_with_both_hashes(toy: WeightsEntry, home: Path) -> None:
    bad = b"not the pinned bytes"
    _put(home / "toy.bin", bad)
    with pytest.raises(WeightsError) as err:
        weights.resolve("toy-net")
    assert DIGEST in str(err.value)
    assert hashlib.sha256(bad).hexdigest() in str(err.value)
    assert "panbench weights pull toy-net" in str(err.value)


def test_missing_file_says_the_command_and_the_path(toy: WeightsEntry, home: Path) -> None:
    with pytest.raises(WeightsError) as err:
        weights.resolve("toy-net")
    message = str(err.value)
    assert "`panbench weights pull toy-net`" in message
    assert str(home / "toy.bin") in message
    assert "PANBENCH_WEIGHTS_TOY_NET" in message


def test_env_var_and_explicit_path_override_the_cache(
    toy: WeightsEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = _put(tmp_path / "mine" / "any-name.bin")
    monkeypatch.setenv("PANBENCH_WEIGHTS_TOY_NET", str(elsewhere))
    assert weights.resolve("toy-net") == elsewhere
    explicit = _put(tmp_path / "explicit.bin")
    assert weights.resolve("toy-net", explicit) == explicit

    monkeypatch.setenv("PANBENCH_WEIGHTS_TOY_NET", str(tmp_path / "nope.bin"))
    with pytest.raises(WeightsError, match="PANBENCH_WEIGHTS_TOY_NET"):
        weights.resolve("toy-net")
    _put(tmp_path / "bad.bin", b"x")
    with pytest.raises(WeightsError, match=DIGEST):
        weights.resolve("toy-net", tmp_path / "bad.bin")


def test_prefix_only_pin(home: Path) -> None:
    entry = WeightsEntry(
        name="toy-prefix", filename="p.bin", description="", licence="", sha256_prefix=DIGEST[:8]
    )
    with weights.registered(entry):
        assert weights.resolve("toy-prefix", _put(home / "p.bin")) == home / "p.bin"
        _put(home / "p.bin", b"other")
        with pytest.raises(WeightsError, match=rf"{DIGEST[:8]}\.\.\."):
            weights.resolve("toy-prefix")
    assert "toy-prefix" not in weights.WEIGHTS
    with pytest.raises(ValueError, match="neither"):
        WeightsEntry(name="x", filename="x", description="", licence="")


def test_verification_is_cached_by_size_and_mtime(
    toy: WeightsEntry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = weights.sha256_file

    def counting(path: Any, *args: Any, **kwargs: Any) -> str:
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(weights, "sha256_file", counting)
    cached = _put(home / "toy.bin")
    weights.resolve("toy-net")
    weights.resolve("toy-net")
    assert len(calls) == 1
    stat = cached.stat()
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    weights.resolve("toy-net")
    assert len(calls) == 2


def _fake_hf(source: bytes, record: list[dict[str, Any]]) -> Any:
    def hf_hub_download(**kwargs: Any) -> str:
        record.append(kwargs)
        target = Path(kwargs["local_dir"]) / kwargs["filename"]
        target.write_bytes(source)
        return str(target)

    return hf_hub_download


def test_pull_from_hugging_face_pins_the_revision(
    toy: WeightsEntry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _fake_hf(PAYLOAD, calls))
    lines: list[str] = []
    path = weights.pull("toy-net", log=lines.append)
    assert path == home / "toy.bin" and path.read_bytes() == PAYLOAD
    assert calls[0]["repo_id"] == "someone/toy" and calls[0]["revision"] == "0" * 40
    assert sorted(p.name for p in home.iterdir()) == ["toy.bin"]  # scratch folder removed
    assert weights.pull("toy-net", log=lines.append) == path
    assert len(calls) == 1 and "already in the cache" in lines[-1]


def test_pull_falls_back_to_the_url(
    toy: WeightsEntry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    def offline(**kwargs: Any) -> str:
        raise OSError("offline")

    opened: list[str] = []

    def urlopen(request: Any, timeout: float) -> io.BytesIO:
        opened.append(request.full_url)
        return io.BytesIO(PAYLOAD)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.setattr(weights.urllib.request, "urlopen", urlopen)
    assert weights.pull("toy-net").read_bytes() == PAYLOAD
    assert opened == ["https://example.invalid/toy.bin"]


def test_pull_is_atomic_and_verifies_before_renaming(
    toy: WeightsEntry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    class Interrupted:
        """A response that breaks after its first chunk, like a dropped connection."""

        def __init__(self) -> None:
            self.reads = 0

        def __enter__(self) -> Interrupted:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self, size: int) -> bytes:
            self.reads += 1
            if self.reads > 1:
                raise ConnectionResetError("connection dropped")
            return PAYLOAD[:100]

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _fake_hf(b"corrupt", []))
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda r, timeout: Interrupted())
    with pytest.raises(WeightsError) as err:
        weights.pull("toy-net")
    message = str(err.value)
    assert hashlib.sha256(b"corrupt").hexdigest() in message and DIGEST in message
    assert "connection dropped" in message and str(home / "toy.bin") in message
    assert list(home.iterdir()) == []  # no partial file, no temporary file

    # A forced re-pull that fails leaves the good cached copy untouched.
    _put(home / "toy.bin")
    with pytest.raises(WeightsError):
        weights.pull("toy-net", force=True)
    assert (home / "toy.bin").read_bytes() == PAYLOAD
    assert [p.name for p in home.iterdir()] == ["toy.bin"]


def test_describe_reports_status(toy: WeightsEntry, home: Path) -> None:
    rows = {r["name"]: r for r in weights.describe()}
    assert rows["toy-net"]["status"] == "missing"
    _put(home / "toy.bin", b"bad")
    assert {r["name"]: r for r in weights.describe(verify_files=True)}["toy-net"]["status"] == (
        "bad sha256"
    )
    _put(home / "toy.bin")
    rows = {r["name"]: r for r in weights.describe(verify_files=True)}
    assert rows["toy-net"]["status"] == "ok" and rows["toy-net"]["licence"] == "CC0-1.0"


def test_load_helpers_use_safe_loaders(home: Path, tmp_path: Path) -> None:
    import torch

    state_file = tmp_path / "state.pt"
    torch.save({"features.0.weight": torch.ones(2)}, state_file)
    with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(torch.nn.Linear(2, 3))
    script_file = tmp_path / "module.pt"
    scripted.save(str(script_file))
    for name, file in (("toy-state", state_file), ("toy-script", script_file)):
        weights.register(
            WeightsEntry(
                name=name,
                filename=file.name,
                description="",
                licence="",
                sha256=weights.sha256_file(file),
            )
        )
    try:
        assert torch.equal(
            weights.load_state_dict("toy-state", state_file)["features.0.weight"], torch.ones(2)
        )
        module = weights.load_torchscript("toy-script", script_file)
        assert module(torch.zeros(1, 2)).shape == (1, 3) and not module.training
    finally:
        weights.WEIGHTS.unregister("toy-state")
        weights.WEIGHTS.unregister("toy-script")


def test_cli_weights_commands(
    toy: WeightsEntry,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import huggingface_hub

    assert main(["weights", "list"]) == 0
    assert "toy-net" in capsys.readouterr().out

    assert main(["weights", "path", "toy-net"]) == 2
    assert "panbench weights pull toy-net" in capsys.readouterr().err.replace("\n", "")
    assert main(["weights", "verify", "toy-net"]) == 1
    assert main(["weights", "verify", "toy-nett"]) == 2
    assert "Did you mean" in capsys.readouterr().err

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _fake_hf(PAYLOAD, []))
    assert main(["weights", "pull", "toy-net"]) == 0
    assert str(home / "toy.bin") in capsys.readouterr().out
    assert main(["weights", "verify", "toy-net"]) == 0
    assert main(["weights", "verify"]) == 0
    assert main(["weights", "path", "toy-net"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(home / "toy.bin"))

    _put(home / "toy.bin", b"tampered")
    assert main(["weights", "verify"]) == 1
    assert DIGEST in capsys.readouterr().err.replace("\n", "")
