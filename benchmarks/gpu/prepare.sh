#!/usr/bin/env bash
# Builds .device/site.txz here: the packages pan-core needs that a lent GPU machine's image lacks,
# as cp312 x86-64 wheels installed into one folder (site312/), with MuJoCo's viewer and studio
# and pygame's docs, examples and tests left out (pan-core renders offscreen through EGL), so
# that the repository and the tarball fit the device tool's 64 MiB transfer. Run from the repository root on a machine with PyPI access;
# then benchmarks/gpu/pan_small.sh runs on the device with `carry: [".device"]`.
# Versions are the CPU constraints' pins (constraints/cpu.txt) or, where it has none, the ones
# this checkout's test environment holds.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.nox/tests/bin/python}
pin() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
mkdir -p .device/whl
rm -rf .device/site312 .device/site.t?z .device/whl/*
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${PLATFORMS[@]}" -d .device/whl \
  "diffusers==$(pin diffusers)" "gymnasium==$(pin gymnasium)" \
  "farama-notifications==$(pin farama-notifications)" "ale-py==$(pin ale-py)" \
  "mujoco==$(pin mujoco)" "glfw==$(pin glfw)" "pyopengl==$(pin pyopengl)" \
  "pymunk==$(pin pymunk)" "cffi==$(pin cffi)" "pycparser==$(pin pycparser)" \
  "gym-pusht==$(pin gym-pusht)" "shapely==$(pin shapely)" "pygame==$(pin pygame)" \
  "termcolor==$(pin termcolor)"
# OCAtari publishes no wheel: build its pure-Python one here.
python3 -m pip wheel -q --no-deps -w .device/whl "ocatari==$(pin ocatari)"
python3 -m pip install -q --no-deps --no-compile --target .device/site312 --python-version 3.12 \
  --implementation cp --only-binary=:all: "${PLATFORMS[@]}" .device/whl/*.whl
rm -rf .device/site312/mujoco/experimental .device/site312/mujoco/_render_filament* \
  .device/site312/pygame/docs .device/site312/pygame/examples .device/site312/pygame/tests
# xz: about 18 MiB, against gzip's 30.
tar cJf .device/site.txz -C .device site312
rm -rf .device/site312 .device/whl
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
tarball=$(du -b .device/site.txz | cut -f1)
echo "wrote .device/site.txz: $((tarball / 1048576)) MiB; tracked files $((tracked / 1048576)) MiB;" \
  "together $(((tracked + tarball) / 1048576)) of the device tool's 64 MiB"
