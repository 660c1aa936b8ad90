"""Dorfman pool-size planning: the formula against published values, the optimum, the allowed-size recommendation and
the ``jingkong pools plan`` command."""

from __future__ import annotations

import io
import json
import math

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from jingkong.testing import pooling

# Dorfman (1943) / Samuels (1978), perfect test: (prevalence, optimal size, expected tests per person).
PUBLISHED = [(0.01, 11, 0.1956), (0.02, 8, 0.2742), (0.05, 5, 0.4262), (0.10, 4, 0.5939), (0.15, 3, 0.7192),
             (0.20, 3, 0.8213), (0.30, 3, 0.9903)]


@pytest.mark.parametrize(("p", "k", "e"), PUBLISHED)
def test_optimal_size_and_cost_match_the_literature(p, k, e):
    assert pooling.optimal_size(p, max_size=50) == k
    assert pooling.expected_tests_per_person(k, p) == pytest.approx(e, abs=5e-5)


def test_above_the_dorfman_threshold_pooling_does_not_pay():
    threshold = 1 - 3 ** (-1 / 3)  # ≈ 30.66 %: the 3-pool costs exactly one test per person
    assert pooling.expected_tests_per_person(3, threshold) == pytest.approx(1.0)
    assert pooling.optimal_size(threshold + 0.005, max_size=20) == 1
    assert pooling.optimal_size(threshold - 0.005, max_size=20) == 3


def test_imperfect_test_formula_by_hand():
    # k = 10, p = 2 %, S = 0.95, Q = 0.99: 1/10 + 0.95 - (0.95 + 0.99 - 1) * 0.98^10
    e = pooling.expected_tests_per_person(10, 0.02, 0.95, 0.99)
    assert e == pytest.approx(0.1 + 0.95 - 0.94 * 0.98 ** 10)
    # False positives make pools flag more often (more retests); missed pools fewer.
    assert pooling.expected_tests_per_person(10, 0.02, 1.0, 0.99) > pooling.expected_tests_per_person(10, 0.02)
    assert pooling.expected_tests_per_person(10, 0.02, 0.95, 1.0) < pooling.expected_tests_per_person(10, 0.02)
    # Scheme accuracy: two stages must both detect an infected person; a healthy one needs two false positives.
    assert pooling.scheme_sensitivity(10, 0.95) == pytest.approx(0.9025)
    flagged = 0.95 * (1 - 0.98 ** 9) + 0.01 * 0.98 ** 9
    assert pooling.scheme_specificity(10, 0.02, 0.95, 0.99) == pytest.approx(1 - 0.01 * flagged)
    assert pooling.scheme_specificity(1, 0.02, 0.95, 0.99) == 0.99


def test_single_tubes_cost_one_test_each_whatever_the_prevalence():
    for p in (0.001, 0.2, 0.9):
        assert pooling.expected_tests_per_person(1, p, 0.9, 0.9) == 1.0


def test_plan_lists_every_size_and_the_best_allowed_one():
    out = pooling.plan(0.01, max_size=20, allowed=[1, 5, 10])
    assert [r["size"] for r in out["sizes"]] == list(range(1, 21))
    assert out["optimal"]["size"] == 11
    assert out["best_allowed"]["size"] == 10
    assert out["best_allowed"]["extra_tests_per_1000_vs_optimal"] == pytest.approx(0.05, abs=0.02)
    row10 = out["sizes"][9]
    assert row10["tubes_per_1000"] == 100.0
    assert row10["tests_per_1000"] == pytest.approx(1000 * (0.1 + 1 - 0.99 ** 10), abs=0.01)
    assert row10["retests_per_1000"] == pytest.approx(1000 * (1 - 0.99 ** 10), abs=0.01)


def test_ties_go_to_the_smaller_pool():
    # At p → 0 with a perfect test 1/k decreases strictly; at p where E(k)=E(k+1) the smaller k is chosen.
    p = 0.01
    e10, e11 = (pooling.expected_tests_per_person(k, p) for k in (10, 11))
    assert e11 < e10  # 11 is strictly better here, so it is chosen
    assert pooling.best_size(p, [10, 11]) == 11
    assert pooling.best_size(0.9, [1, 1]) == 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"prevalence": 0}, "prevalence"), ({"prevalence": 1}, "prevalence"), ({"prevalence": -0.1}, "prevalence"),
    ({"prevalence": math.nan}, "prevalence"), ({"prevalence": 0.01, "max_size": 0}, "max_size"),
    ({"prevalence": 0.01, "sensitivity": 0}, "sensitivity"), ({"prevalence": 0.01, "specificity": 1.2}, "specificity"),
])
def test_bad_inputs_name_the_argument(kwargs, field):
    with pytest.raises(pooling.PoolingError) as err:
        pooling.check_inputs(**kwargs)
    assert err.value.field == field


def test_recommendation_uses_only_allowed_sizes():
    allowed = [1, 5, 10]
    low = pooling.recommend(tested=5000, prevalence=0.001, allowed=allowed, default=10)
    assert (low.pool_size, low.reason) == (10, "positivity")
    mid = pooling.recommend(tested=5000, prevalence=0.05, allowed=allowed, default=10)
    assert mid.pool_size == 5  # the optimum 5 is allowed
    high = pooling.recommend(tested=5000, prevalence=0.35, allowed=allowed, default=10)
    assert high.pool_size == 1
    none_found = pooling.recommend(tested=5000, prevalence=0.0, allowed=[1, 5, 10, 20], default=10)
    assert none_found.pool_size == 20
    few = pooling.recommend(tested=30, prevalence=0.2, allowed=allowed, default=10)
    assert (few.pool_size, few.reason) == (10, "too_few_tested")


def test_implied_prevalence_inverts_the_pool_positive_rate():
    p = 0.004
    r = 1 - (1 - p) ** 10
    assert pooling.implied_prevalence(r, 10) == pytest.approx(p)
    assert pooling.implied_prevalence(0.0, 10) == 0.0


def _run(*args) -> dict:
    out = io.StringIO()
    call_command("pools_plan", *args, stdout=out)
    return json.loads(out.getvalue())


def test_command_prints_json_with_the_optimum():
    out = _run("--prevalence", "1%", "--max-size", "15")
    assert out["optimal"]["size"] == 11
    assert out["optimal"]["expected_tests_per_person"] == pytest.approx(0.1956, abs=1e-4)
    assert len(out["sizes"]) == 15 and "best_allowed" not in out
    imperfect = _run("--prevalence", "0.02", "--sensitivity", "0.95", "--specificity", "0.99")
    assert imperfect["sensitivity"] == 0.95 and imperfect["optimal"]["size"] >= 5


@pytest.mark.django_db
def test_command_reports_the_best_size_a_profile_allows():
    from jingkong.policy.services import profile_install_builtin

    profile_install_builtin()
    out = _run("--prevalence", "0.01", "--profile", "cn-8th-2021")
    assert out["allowed"] == [1, 5, 10] and out["best_allowed"]["size"] == 10


@pytest.mark.parametrize("args", [
    ["--prevalence", "1.5"], ["--prevalence", "0"], ["--prevalence", "abc"], ["--prevalence", "0.01", "--max-size", "0"],
    ["--prevalence", "0.01", "--max-size", "x"], ["--prevalence", "0.01", "--specificity", "2"],
])
def test_command_refuses_bad_arguments_with_exit_status_2(args):
    with pytest.raises(CommandError) as err:
        call_command("pools_plan", *args, stdout=io.StringIO())
    assert err.value.returncode == 2
    assert args[-2].lstrip("-") in str(err.value)


def test_cli_exit_status_is_2():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "jingkong.cli", "pools", "plan", "--prevalence", "2"],
                          capture_output=True, text=True, env={**__import__("os").environ, "JINGKONG_DEBUG": "1"})
    assert done.returncode == 2
    assert "prevalence" in done.stderr
