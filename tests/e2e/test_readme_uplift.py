"""The README's control-group example runs by copy and paste against the real local server
(issue 19): the tour's first block (the tokens), then every `sh` block of "Control groups
and uplift", in one bash session. A broadcast with a control group is sent, orders come in,
measure-campaigns runs and the uplift report comes back."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_readme_tour import blocks_of, run_blocks

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the example needs curl and jq")
def test_the_readme_uplift_example_runs(fresh_server):
    readme = (ROOT / "README.md").read_text()
    out, err, statuses = run_blocks(fresh_server, [blocks_of(readme, "## A tour of the API")[0],
                                                  *blocks_of(readme, "## Control groups and uplift")])
    assert statuses and not [s for s in statuses if s >= 400 and s != 409], statuses  # 409: members seeded before
    counts = json.loads(re.search(r'^\{"eligible".*\}$', out, re.M).group(0))
    assert counts["eligible"] == 8 and counts["queued"] + counts["control"] == 8
    assert '{"job":"measure-campaigns","status":"succeeded"}' in out
    report = json.loads(out[out.index('{\n  "attribution_days"'):])
    assert report["attribution_days"] == 7
    assert report["treatment"]["members"] == counts["queued"] and report["control"]["members"] == counts["control"]
    converted = report["treatment"]["converters"] + report["control"]["converters"]
    assert converted == 3 and report["treatment"]["revenue"] + report["control"]["revenue"] == 15000
    assert set(report["uplift"]) == {"conversion_rate_diff", "ci95", "p_value", "incremental_revenue"}
    assert report["guidance"]["verdict"] in ("too_small", "no_control", "no_treatment")
