"""The project documents itself (SPEC 5): the README and docs/API.md are complete, runnable
by copy and paste, and point nowhere outside the repository."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "API.md").read_text()


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_the_readme_links_the_guides_and_nothing_outside_the_repository():
    for doc in ("docs/API.md", "docs/ARCHITECTURE.md"):
        assert f"]({doc})" in README
    links = re.findall(r"\]\(([^)]+)\)", README + API)
    assert links
    for link in links:
        assert not link.startswith(("../", "/", "http:", "https:")), link
    for text in (README, API):
        assert "shared/" not in text and "SPEC.md" not in text


def test_the_readme_keeps_the_two_commands_and_the_performance_section():
    assert "make run" in shell_blocks(README)[0] and "make test" in shell_blocks(README)[0]
    assert "## Performance" in README


def test_the_tour_has_nothing_to_edit_and_writes_no_file():
    tour = README[README.index("## A tour of the API"):README.index("## CLI")]
    blocks = shell_blocks(tour)
    assert len(blocks) >= 8
    for block in blocks:
        assert not re.search(r"<[a-z_ -]+>", block), block  # no <placeholder> to replace
        assert not re.search(r"(^|[^2&])>\s*[\w./-]+\.(json|txt|csv)", block), block  # no stray files
        assert "tee " not in block and " -o " not in block.replace("-o /dev/null", "")
    assert "jq -r .code" in tour and "jq -r .coupon_redemption_id" in tour and "jq -r .job_id" in tour


def test_the_api_guide_names_every_route():
    import app  # noqa: F401 - registers the routes
    from chalicelib.api.http import ENDPOINTS

    missing = [f"{e.method} {e.path}" for e in ENDPOINTS if f"`{e.method} {e.path}`" not in API]
    assert not missing, missing
    for topic in ("## Authentication and roles", "## Errors", "## Lists", "## Idempotency", "METHOD_NOT_ALLOWED",
                  "`GET /v1/docs`", "next_cursor"):
        assert topic in API, topic
