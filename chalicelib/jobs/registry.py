"""Imports every job module so their `@register` calls run (lazily: not at `import app`)."""
from __future__ import annotations

import importlib

JOB_MODULES = [
    "chalicelib.jobs.points",
    "chalicelib.jobs.vouchers",
    "chalicelib.jobs.coupons",
    "chalicelib.jobs.marketing",
    "chalicelib.jobs.scoring",
    "chalicelib.jobs.data",
    "chalicelib.jobs.finance",
    "chalicelib.jobs.measure",
]

_loaded = False


def load() -> None:
    global _loaded
    if not _loaded:
        for name in JOB_MODULES:
            importlib.import_module(name)
        _loaded = True
