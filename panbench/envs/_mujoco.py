"""MuJoCo plumbing for panbench's 3D envs: import with a GL backend, offscreen renderers, states.

MuJoCo renders offscreen through OpenGL. panbench asks for EGL (``MUJOCO_GL=egl``) unless the user
chose a backend; on a machine without a GPU, Mesa's software EGL (llvmpipe) renders. The costly
defaults of MuJoCo's renderer (a 4096 px shadow map and 4x multisampling) are switched off in the
scene XML, which takes a 64 px frame from ~30 ms to ~0.2 ms on one CPU core and keeps every pixel
either fully one geom or another, so colour perception can be exact.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import weakref
from typing import Any

import numpy as np

from panbench.errors import ConfigError

#: what to install when no GL backend works (Debian/Ubuntu package names)
GL_FIX = (
    "install Mesa's EGL (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri) and set "
    "MUJOCO_GL=egl before anything imports mujoco (panbench sets it when it imports mujoco "
    "first), or install libosmesa6 and set MUJOCO_GL=osmesa"
)

_RENDERERS: weakref.WeakSet[Any] = weakref.WeakSet()

# MuJoCo reads MUJOCO_GL once, when it is first imported: choose before anyone imports it.
os.environ.setdefault("MUJOCO_GL", "egl")


def import_mujoco() -> Any:
    """Imports ``mujoco`` with an offscreen GL backend chosen (EGL unless the user set one).

    Raises:
        ConfigError: the package is not installed (the message names the extra to install).
    """
    try:
        import mujoco
    except ImportError as err:
        raise ConfigError(
            "Expected the `mujoco` package for the 3D physics env, but it is not installed "
            f"({err}). Install it with: pip install 'panbench[physics]'."
        ) from err
    return mujoco


def make_renderer(model: Any, resolution: int) -> Any:
    """An offscreen ``mujoco.Renderer`` of ``resolution`` x ``resolution`` pixels.

    Raises:
        ConfigError: no GL context could be made (the message says what to install).
    """
    mujoco = import_mujoco()
    try:
        renderer = mujoco.Renderer(model, resolution, resolution)
    except Exception as err:  # mujoco raises several kinds (RuntimeError, EGL/GL errors)
        raise ConfigError(
            f"Expected an offscreen OpenGL context for MuJoCo (MUJOCO_GL="
            f"{os.environ.get('MUJOCO_GL')}), but creating one failed: {err}. Fix: {GL_FIX}."
        ) from err
    if not _RENDERERS:
        # Registered after MuJoCo's own exit handler (which terminates the EGL display when the
        # first context is made), so it runs before it.
        atexit.register(_close_renderers)
    _RENDERERS.add(renderer)
    return renderer


def _close_renderers() -> None:
    # Close GL contexts while the interpreter is intact: closing them from __del__ during
    # shutdown prints spurious EGL errors.
    for renderer in list(_RENDERERS):
        with contextlib.suppress(Exception):  # best effort at exit
            renderer.close()


def state_spec(mujoco: Any) -> int:
    """The ``mjtState`` bits panbench saves: everything the next step depends on.

    Integration state includes warm-start accelerations and controls, so stepping from a
    restored state gives exactly the values of an uninterrupted rollout.
    """
    return int(mujoco.mjtState.mjSTATE_INTEGRATION)


def get_state(mujoco: Any, model: Any, data: Any) -> np.ndarray:
    """The physics state of ``data`` as a read-only float64 vector."""
    spec = state_spec(mujoco)
    out = np.empty(mujoco.mj_stateSize(model, spec), dtype=np.float64)
    mujoco.mj_getState(model, data, out, spec)
    out.setflags(write=False)
    return out


def set_state(mujoco: Any, model: Any, data: Any, vector: np.ndarray, forward: bool = True) -> None:
    """Loads a vector from :func:`get_state` into ``data``.

    Args:
        forward: recompute positions of bodies, cameras and contacts (for rendering and reading
            poses). Stepping needs no forward pass first: ``mj_step`` does its own, and skipping
            it keeps a restored state's next step identical to an uninterrupted one.
    """
    mujoco.mj_setState(model, data, np.asarray(vector, dtype=np.float64), state_spec(mujoco))
    if forward:
        mujoco.mj_forward(model, data)
