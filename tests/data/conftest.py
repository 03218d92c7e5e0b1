"""Fixtures for the data tests: the toy env, registered only while a test runs, and shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from panbench.envs import ENVS, make
from tests.data.toy import TOY_ENV, ToyDotEnv


@pytest.fixture
def toy_env() -> Iterator[str]:
    """Registers :class:`ToyDotEnv` as ``toy-dot`` for one test and yields its name."""
    ENVS.register(TOY_ENV, ToyDotEnv, override=True)
    try:
        yield TOY_ENV
    finally:
        ENVS.unregister(TOY_ENV)


@pytest.fixture
def shapes_env() -> str:
    """The real ``shapes`` env's name; skips the test until that env exists."""
    try:
        make("shapes")
    except (ImportError, ModuleNotFoundError) as err:
        pytest.skip(f"the shapes env is not available yet ({err})")
    return "shapes"
