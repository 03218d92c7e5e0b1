"""Where task and suite files live and how a name finds its file."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from importlib.resources import files
from pathlib import Path

import yaml

from panbench.errors import UnknownNameError
from panbench.registry import did_you_mean

YAML_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")


# ============================================================================ finding files
def shipped_tasks_dir() -> Path:
    """The folder of the task specs shipped with panbench (the package ``panbench.tasks``)."""
    return Path(str(files("panbench.tasks")))


def _task_dirs(search_paths: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    if search_paths is None:
        return [shipped_tasks_dir()]
    if isinstance(search_paths, (str, os.PathLike)):  # one folder, not a sequence of letters
        return [Path(search_paths)]
    return [Path(p) for p in search_paths]


def _suite_dirs(search_paths: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    return [d / "suites" for d in _task_dirs(search_paths)]


def _looks_like_path(name_or_path: str | os.PathLike[str]) -> bool:
    if isinstance(name_or_path, os.PathLike):
        return True
    return name_or_path.endswith(YAML_SUFFIXES) or "/" in name_or_path or os.sep in name_or_path


def _yaml_files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix in YAML_SUFFIXES and path.is_file():
                yield path


def _declared_name(path: Path, key: str) -> str | None:
    """The ``task:``/``suite:`` a file declares, or None (unreadable files are skipped here and
    reported when loaded)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _find_named(name: str, dirs: Sequence[Path], key: str) -> Path | None:
    """A file ``<name>.yaml`` in the first folder that has one, else the file declaring
    ``<key>: <name>`` (templates named ``_*`` are found only by file name)."""
    for folder in dirs:
        for suffix in YAML_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    for folder in dirs:
        for path in _yaml_files(folder):
            if not path.name.startswith("_") and _declared_name(path, key) == name:
                return path
    return None


def _known_names(dirs: Sequence[Path], key: str) -> list[str]:
    names = set()
    for folder in dirs:
        for path in _yaml_files(folder):
            if not path.name.startswith("_"):
                names.add(_declared_name(path, key) or path.stem)
    return sorted(names)


def _unknown(kind: str, name: str, dirs: Sequence[Path], key: str) -> UnknownNameError:
    known = _known_names(dirs, key)
    return UnknownNameError(
        f"Unknown {kind} {name!r}.{did_you_mean(name, known)} Known {kind}s: "
        f"{', '.join(known) or '(none)'} (looked in: {', '.join(str(d) for d in dirs)})."
    )
