"""Job kinds of the testing app (each helper module registers its own: imported here so they exist in every process)."""

from __future__ import annotations

import importlib

# Modules that call jingkong.core.jobs.register(...) at import time.
JOB_MODULES = ("jingkong.testing.loadscans", "jingkong.testing.results")

for _name in JOB_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a module is being written
        if exc.name != _name:
            raise
