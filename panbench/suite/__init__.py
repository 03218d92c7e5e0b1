"""Declarative task and suite specs: load ``tasks/*.yaml``, validate with file:line errors, hash.

A task file names a protocol, an env or a data source, how episodes are drawn and which metrics
are scored; a suite file lists tasks (optionally with overrides). Specs are frozen values. Their
content hash covers every field that affects scoring plus the env's class-level ``version``, so
results made under different specs or env dynamics can never be mixed by accident. The YAML
schema, ``include:`` semantics and the versioning rules are documented in ``docs/tasks.md``.

Modules: :mod:`~panbench.suite.spec` (the frozen values and hashes), :mod:`~panbench.suite.loading`
(YAML, ``include:``, overrides, locations), :mod:`~panbench.suite.checks` (field checks, against
the protocols' own declarations), :mod:`~panbench.suite.validate` (``panbench tasks validate``),
:mod:`~panbench.suite.listing` and :mod:`~panbench.suite.files` (finding and listing files).
"""

from panbench.suite.files import shipped_tasks_dir
from panbench.suite.listing import list_suites, list_tasks
from panbench.suite.loading import load_suite, load_task
from panbench.suite.problems import SpecError, SpecProblem
from panbench.suite.spec import DataSpec, EnvSpec, EpisodeSpec, Suite, TaskSpec
from panbench.suite.validate import CheckReport, check_path, validate_path

__all__ = [
    "CheckReport",
    "DataSpec",
    "EnvSpec",
    "EpisodeSpec",
    "SpecError",
    "SpecProblem",
    "Suite",
    "TaskSpec",
    "check_path",
    "list_suites",
    "list_tasks",
    "load_suite",
    "load_task",
    "shipped_tasks_dir",
    "validate_path",
]
