"""The statistics and the hold-out assignment of SPEC 2.18 (chalicelib/domain/uplift.py):
hand-worked cases, and the two-proportion z-test against scipy's normal distribution
(statsmodels is not a dependency: the reference is computed here independently)."""
import hashlib
import math
from decimal import Decimal

import pytest
from scipy import stats

from chalicelib.domain import uplift
from chalicelib.domain.uplift import Group


# --- assignment ----------------------------------------------------------------------------

def _hash_value(key: str) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16)


def test_in_control_follows_the_first_eight_hex_digits():
    keys = [f"mc_1:m-{i}" for i in range(400)]
    for share in ("0.1", "0.25", "0.5", "0.999999"):
        bound = Decimal(share) * 2 ** 32
        for key in keys:
            assert uplift.in_control(key, share) is (_hash_value(key) < bound)


def test_in_control_known_keys():
    # sha256("mc_1:m-1") begins 24625d7e = 610426238: 610426238 / 2^32 = 0.14212593...
    assert hashlib.sha256(b"mc_1:m-1").hexdigest()[:8] == "24625d7e"
    assert uplift.in_control("mc_1:m-1", "0.1422")
    assert not uplift.in_control("mc_1:m-1", "0.1421")
    # exactly at the boundary (610426238 / 2^32, a terminating decimal): not below, so not held out
    assert not uplift.in_control("mc_1:m-1", "0.14212593389675021171569824218750")
    assert uplift.in_control("mc_1:m-1", "0.14212593389675021171569824218751")
    # sha256("mc_1:m-2") begins ff8c6d6f: held out only by a share above 0.99823650
    assert not uplift.in_control("mc_1:m-2", "0.998")
    assert uplift.in_control("mc_1:m-2", "0.9983")
    assert not uplift.in_control("mc_1:m-1", "0")


def test_share_zero_holds_nobody_and_share_is_about_right():
    keys = [uplift.control_key_automation("birthday", "2026-11-22", f"m-{i}") for i in range(4000)]
    assert keys[0] == "birthday:2026-11-22:m-0"
    assert uplift.control_key_broadcast("mc_9", "m-3") == "mc_9:m-3"
    assert not any(uplift.in_control(k, "0") for k in keys)
    held = sum(uplift.in_control(k, "0.2") for k in keys)
    assert 700 < held < 900  # 20% of 4000, within ~4 standard deviations


@pytest.mark.parametrize("bad", ["1", "1.0", "-0.1", "abc", "NaN", "Infinity", 0.1, 1])
def test_parse_share_refuses(bad):
    with pytest.raises(ValueError):
        uplift.parse_share(bad)


def test_parse_share_accepts():
    assert uplift.parse_share("0") == 0
    assert uplift.parse_share("0.15") == Decimal("0.15")


# --- hand-worked statistics --------------------------------------------------------------

def test_hand_worked_report():
    # treatment 1000 members, 120 converters, revenue 600000; control 1000, 100, 450000
    t, c = Group(1000, 120, 600_000), Group(1000, 100, 450_000)
    r = uplift.report(t, c, 7, "2026-11-30T00:00:00Z")
    assert r["treatment"] == {"members": 1000, "converters": 120, "conversion_rate": 0.12, "revenue": 600000,
                              "revenue_per_member": 600.0}
    assert r["control"]["conversion_rate"] == 0.1
    # diff 0.02; se = sqrt(.12*.88/1000 + .1*.9/1000) = sqrt(0.0001956) = 0.013986
    # ci = 0.02 ± 1.96 * 0.013986 = [-0.007412, 0.047412]
    assert r["uplift"]["conversion_rate_diff"] == 0.02
    assert r["uplift"]["ci95"] == [-0.0074, 0.0474]
    # pooled p = 0.11; se0 = sqrt(.11*.89*(2/1000)) = 0.013993; z = 1.42931; p = 0.15291
    assert r["uplift"]["p_value"] == 0.1529
    # floor((600 − 450) × 1000)
    assert r["uplift"]["incremental_revenue"] == 150000
    assert r["guidance"]["conclusive"] is False
    assert r["guidance"]["verdict"] == "inconclusive"
    # (1.959964 + 0.841621) × sqrt(.1 × .9 × 2/1000) = 2.801585 × 0.0134164 = 0.037587
    assert r["guidance"]["minimum_detectable_effect"] == 0.0376
    assert r["attribution_days"] == 7 and r["as_of"] == "2026-11-30T00:00:00Z"


def test_incremental_revenue_floors_the_exact_value():
    # rpm_t = 1000/3, rpm_c = 100/1; (333.33.. − 100) × 3 = 700 exactly; with 7 members: floor
    assert uplift.uplift(Group(3, 1, 1000), Group(1, 1, 100))["incremental_revenue"] == 700
    # rpm_t = 10/3, rpm_c = 5/2 → (10/3 − 5/2) × 3 = 2.5 → 2
    assert uplift.uplift(Group(3, 1, 10), Group(2, 1, 5))["incremental_revenue"] == 2
    # negative: (0 − 5/2) × 3 = −7.5 → −8 (floor, not truncation)
    assert uplift.uplift(Group(3, 0, 0), Group(2, 1, 5))["incremental_revenue"] == -8


def test_empty_groups_are_null():
    r = uplift.report(Group(10, 2, 500), Group(), 7, "x")
    assert r["control"] == {"members": 0, "converters": 0, "conversion_rate": None, "revenue": 0,
                            "revenue_per_member": None}
    assert r["uplift"] == {"conversion_rate_diff": None, "ci95": None, "p_value": None,
                           "incremental_revenue": None}
    assert r["guidance"]["verdict"] == "no_control" and r["guidance"]["minimum_detectable_effect"] is None
    r = uplift.report(Group(), Group(), 7, "x")
    assert r["treatment"]["conversion_rate"] is None and r["guidance"]["verdict"] == "no_control"
    assert uplift.report(Group(), Group(5, 1, 1), 7, "x")["guidance"]["verdict"] == "no_treatment"


def test_degenerate_rates():
    # nobody converted anywhere: no difference, p = 1, a zero-width interval
    up = uplift.uplift(Group(50, 0, 0), Group(40, 0, 0))
    assert up == {"conversion_rate_diff": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0, "incremental_revenue": 0}
    # everyone converted in one group, nobody in the other: variance of the diff is 0 but
    # the pooled test is defined
    up = uplift.uplift(Group(40, 40, 4000), Group(40, 0, 0))
    assert up["conversion_rate_diff"] == 1.0 and up["ci95"] == [1.0, 1.0]
    assert up["p_value"] == 0.0


def test_rounding_is_to_four_decimals():
    r = uplift.report(Group(3, 1, 100), Group(7, 2, 100), 7, None)
    assert r["treatment"]["conversion_rate"] == 0.3333
    assert r["control"]["conversion_rate"] == 0.2857
    assert r["treatment"]["revenue_per_member"] == 33.3333
    assert r["control"]["revenue_per_member"] == 14.2857
    assert r["uplift"]["conversion_rate_diff"] == 0.0476  # 1/3 − 2/7 = 1/21 = 0.047619


def test_verdicts():
    assert uplift.guidance(Group(29, 20, 0), Group(1000, 100, 0), 0.0001)["verdict"] == "too_small"
    big = uplift.report(Group(5000, 700, 0), Group(5000, 500, 0), 7, None)
    assert big["guidance"]["conclusive"] is True and big["guidance"]["verdict"] == "positive"
    low = uplift.report(Group(5000, 400, 0), Group(5000, 500, 0), 7, None)
    assert low["guidance"]["verdict"] == "negative"


# --- against scipy -----------------------------------------------------------------------

def _reference_z_test(k1, n1, k2, n2):
    """The textbook pooled two-proportion z-test, via scipy's normal distribution."""
    p1, p2 = k1 / n1, k2 / n2
    p = (k1 + k2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return z, 2 * stats.norm.sf(abs(z))


CASES = [(120, 1000, 100, 1000), (33, 250, 12, 90), (5, 40, 9, 41), (480, 5000, 520, 5200), (1, 3, 2, 7),
         (700, 5000, 500, 5000), (0, 10, 3, 12), (999, 1000, 990, 1000)]


@pytest.mark.parametrize("k1,n1,k2,n2", CASES)
def test_z_test_matches_scipy(k1, n1, k2, n2):
    z, p = uplift.pooled_z_test(k1, n1, k2, n2)
    ref_z, ref_p = _reference_z_test(k1, n1, k2, n2)
    assert z == pytest.approx(ref_z, rel=1e-12, abs=1e-12)
    assert p == pytest.approx(ref_p, rel=1e-9, abs=1e-15)
    assert uplift.uplift(Group(n1, k1, 0), Group(n2, k2, 0))["p_value"] == round(ref_p, 4)


@pytest.mark.parametrize("k1,n1,k2,n2", CASES)
def test_interval_matches_scipy_quantile(k1, n1, k2, n2):
    low, high = uplift.diff_ci95(k1, n1, k2, n2)
    p1, p2 = k1 / n1, k2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    assert low == pytest.approx(p1 - p2 - 1.96 * se)
    assert high == pytest.approx(p1 - p2 + 1.96 * se)
    # 1.96 is the 97.5% normal quantile the spec rounds
    assert stats.norm.ppf(0.975) == pytest.approx(1.96, abs=5e-5)


def test_mde_constants_match_scipy():
    assert uplift.Z_95 == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)
    assert uplift.Z_POWER_80 == pytest.approx(stats.norm.ppf(0.8), rel=1e-12)
    # at the MDE the power of the one-sided approximation is 80%
    n, p = 2000, 0.1
    mde = uplift.minimum_detectable_effect(n, n, p)
    se = math.sqrt(p * (1 - p) * 2 / n)
    assert stats.norm.sf(stats.norm.ppf(0.975) - mde / se) == pytest.approx(0.8, abs=1e-9)


def test_p_value_normal_tail_matches_scipy():
    for z in (0.0, 0.5, 1.0, 1.96, 2.5, 3.3, 5.0, -2.0):
        assert uplift.normal_two_sided_p(z) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)


def test_domain_module_imports_no_scipy():
    import subprocess
    import sys

    code = "import sys, chalicelib.domain.uplift; print('scipy' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False False"
