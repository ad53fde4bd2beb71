"""`cold_import_ratio`: a fresh interpreter's `import app` ÷ importing its third-party
dependencies alone.

The dependency list is computed, not guessed: a child interpreter imports `app` and
lists every module then loaded from site-packages (the exact submodules, e.g.
`botocore.client`, not just `botocore`), in load order. The floor is a fresh
interpreter importing exactly those modules; the value is a fresh interpreter
importing `app`. Both time the import inside the child (interpreter start-up, common
to both, is left out, which makes the ratio stricter) in CPU time (`time.process_time`:
the wall clock of a child on a shared machine also counts the time it waits for a
core; the wall-clock ratio is reported beside it), bytecode is cached for both (a
warm-up run of each writes it to a scratch `PYTHONPYCACHEPREFIX`), and the runs
alternate app / floor (and which goes first) so drift hits both alike.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from statistics import median

from bench.common import ROOT, entry

_LIST_DEPS = r"""
import json, sys, sysconfig
sys.path.insert(0, {root!r})
import app  # noqa: F401
site = {{sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}}
mods = [n for n, m in list(sys.modules.items())
        if any((getattr(m, "__file__", None) or "").startswith(s) for s in site)]
print(json.dumps(mods))
"""

_TIME_APP = r"""
import sys, time
sys.path.insert(0, {root!r})
t, c = time.perf_counter(), time.process_time()
import app  # noqa: F401
print(time.perf_counter() - t, time.process_time() - c)
"""

_TIME_DEPS = r"""
import importlib, json, sys, time
mods = json.load(open({path!r}))
t, c = time.perf_counter(), time.process_time()
for name in mods:
    try:
        importlib.import_module(name)
    except Exception:  # a module that only loads as a side effect of its parent
        pass
print(time.perf_counter() - t, time.process_time() - c)
"""


_PYCACHE = tempfile.mkdtemp(prefix="bench-pyc-")
atexit.register(shutil.rmtree, _PYCACHE, True)


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("LOYALTY_STAGE", "local")
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # Bytecode is cached for both sides alike, in a scratch directory: the app's modules
    # as well as the dependencies' (pip compiles those at install). With
    # PYTHONDONTWRITEBYTECODE set, as on this machine, the app would otherwise be
    # compiled from source on every start while its dependencies are not.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    return env


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def dependencies() -> list[str]:
    """The third-party modules `import app` loads, in load order."""
    return json.loads(_run(_LIST_DEPS.format(root=ROOT)))


def measure(rounds: int = 7) -> dict:
    deps = dependencies()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(deps, f)
        path = f.name
    try:
        app_code, deps_code = _TIME_APP.format(root=ROOT), _TIME_DEPS.format(path=path)
        _run(app_code), _run(deps_code)  # warm the .pyc caches and the page cache
        app_s, deps_s, app_wall, deps_wall = [], [], [], []
        for r in range(rounds):
            for code, cpu, wall in ((app_code, app_s, app_wall), (deps_code, deps_s, deps_wall))[::1 if r % 2 == 0 else -1]:
                w, c = map(float, _run(code).split())
                cpu.append(c)
                wall.append(w)
    finally:
        os.unlink(path)
    tops = sorted({d.split(".")[0] for d in deps})
    # CPU time of the import (time.process_time in the child): on a shared machine the wall
    # clock also counts the time the child waits for a core, which drowns a 10% difference.
    value, floor = median(app_s), median(deps_s)
    return entry(round(value * 1000, 1), round(floor * 1000, 1), round(value / floor, 3), "<= 1.1", "ms (CPU)",
                 rounds=rounds, dependency_packages=tops, dependency_modules=len(deps),
                 app_runs_ms=[round(x * 1000, 1) for x in app_s], floor_runs_ms=[round(x * 1000, 1) for x in deps_s],
                 app_wall_ms=[round(x * 1000, 1) for x in app_wall], floor_wall_ms=[round(x * 1000, 1) for x in deps_wall],
                 wall_ratio=round(median(app_wall) / median(deps_wall), 3))
