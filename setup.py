"""Package discovery only (metadata lives in pyproject.toml).

tasks/ sits at the repository root, as docs/architecture.md lays out, and is shipped inside
the wheel as the package ``panbench.tasks`` so an installed panbench finds its task specs.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["panbench", "panbench.*", "reference_model", "reference_model.*"])
setup(
    packages=[*packages, "panbench.tasks"],
    package_dir={"panbench.tasks": "tasks"},
)
