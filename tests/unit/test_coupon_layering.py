"""The coupon and marketing use cases name no PynamoDB model and format no key: every record,
condition and key comes from store/ (issue 14). import-linter checks modules; this checks names."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "chalicelib/services/coupons").glob("*.py")) + [
    ROOT / "chalicelib/services/marketing.py", ROOT / "chalicelib/jobs/coupons.py"]
KEY_HELPERS = {"shard_key", "gen_key", "pool_key", "order_key", "code_item"}  # store-internal key formats


def _offences(path: pathlib.Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
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


def test_the_modules_exist():
    assert len(MODULES) >= 8 and all(p.exists() for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_model_class_nor_key_format(path):
    assert _offences(path) == []


def test_the_check_sees_an_offence():
    sample = ROOT / "chalicelib/store/coupons.py"  # the store may, and does
    found = _offences(sample)
    assert any("CounterRecord" in f for f in found) and any("pynamodb" in f for f in found)
