"""Issue 14: services and jobs never name a PynamoDB model nor format a key; every record,
condition and key comes from `chalicelib/store`. import-linter checks modules (a contract in
pyproject.toml forbids `store.models` and `pynamodb` above the store); this checks names in
every module of `services/` and `jobs/`: no `*Record`, no model imported from a store module,
no store-internal key helper."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "chalicelib/services").rglob("*.py")) + sorted((ROOT / "chalicelib/jobs").rglob("*.py"))
KEY_HELPERS = {"shard_key", "gen_key", "pool_key", "order_key", "code_item", "_record_key", "_referral_key"}


def _offences(path: pathlib.Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = getattr(node, "module", None) or ""
            names = [a.name for a in node.names]
            if mod.startswith("pynamodb") or mod == "chalicelib.store.models" or any(
                    n.startswith("pynamodb") or n == "chalicelib.store.models" for n in names):
                out.append(f"line {node.lineno}: imports {mod or names}")
            out += [f"line {node.lineno}: imports {n}" for n in names if n.endswith("Record")]
        elif isinstance(node, ast.Name) and node.id.endswith("Record"):
            out.append(f"line {node.lineno}: names {node.id}")
        elif isinstance(node, ast.Attribute) and (node.attr.endswith("Record") or node.attr in KEY_HELPERS):
            out.append(f"line {node.lineno}: uses .{node.attr}")
    return out


def test_every_service_and_job_is_checked():
    names = {p.relative_to(ROOT).as_posix() for p in MODULES}
    assert {"chalicelib/services/points/accruals.py", "chalicelib/services/coupons/redeeming.py",
            "chalicelib/services/segments.py", "chalicelib/jobs/scoring.py"} <= names and len(names) > 40


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_model_class_nor_key_format(path):
    assert _offences(path) == []


def test_the_check_sees_an_offence():
    found = _offences(ROOT / "chalicelib/store/coupons.py")  # the store may, and does
    assert any("CounterRecord" in f for f in found) and any("pynamodb" in f for f in found)
