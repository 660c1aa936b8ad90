"""Epidemic-curve helpers: growth rate / doubling / halving time and curve assembly (pure)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from jingkong.analytics import epi, rt


def test_exact_exponential_growth_gives_its_doubling_time():
    counts = [10 * 2 ** t for t in range(7)]  # doubles every day: the Poisson fit is exact
    assert epi.doubling_time(counts) == pytest.approx(1.0, rel=1e-9)
    assert epi.halving_time(counts) is None
    assert epi.halving_time(counts[::-1]) == pytest.approx(1.0, rel=1e-9)
    assert epi.doubling_time(counts[::-1]) is None


def test_doubling_every_three_days_from_rounded_counts():
    counts = [round(1000 * 2 ** (t / 3)) for t in range(20)]
    assert epi.doubling_time(counts) == pytest.approx(3.0, rel=1e-3)
    assert epi.doubling_time(counts, window=14) == pytest.approx(3.0, rel=1e-3)


def test_the_fit_is_the_poisson_maximum_likelihood():
    counts = [3, 0, 5, 4, 9, 7, 12]
    fitted = epi.growth(counts)
    assert fitted is not None and fitted.cases == sum(counts) and (fitted.start, fitted.end) == (0, 6)
    # at the maximum the score equations hold: Σ(y - μ) = 0 and Σ t(y - μ) = 0, with μ_t = exp(α + r t) and α the
    # value that makes the first one hold
    alpha = math.log(sum(counts) / sum(math.exp(fitted.rate * t) for t in range(7)))
    mu = [math.exp(alpha + fitted.rate * t) for t in range(7)]
    assert sum(t * (y - m) for t, (y, m) in enumerate(zip(counts, mu, strict=True))) == pytest.approx(0, abs=1e-8)
    assert fitted.rate_low < fitted.rate < fitted.rate_high
    assert epi.doubling_time(counts) == pytest.approx(math.log(2) / fitted.rate)


def test_the_window_is_the_last_days_before_the_skipped_ones():
    rising = [10 * 2 ** t for t in range(7)]
    counts = [500, 3, 1, *rising, 0, 0, 0]  # the last three days still being reported
    assert epi.doubling_time(counts) is None  # the zeros look like a decline
    assert epi.doubling_time(counts, skip_last=3) == pytest.approx(1.0, rel=1e-9)
    fitted = epi.growth(counts, skip_last=3)
    assert (fitted.start, fitted.end) == (3, 9)


@pytest.mark.parametrize("counts", [
    [1, 0, 2, 1, 0, 1, 2],  # 7 cases < 10
    [0, 0, 0, 50, 0, 0, 0],  # all on one day: no line fits
    [5, 6, 7],  # shorter than the window
    [],
])
def test_too_little_data_gives_none(counts):
    assert epi.doubling_time(counts) is None and epi.halving_time(counts) is None


def test_flat_counts_neither_double_nor_halve():
    assert epi.growth([4] * 7).rate == pytest.approx(0.0, abs=1e-12)
    assert epi.doubling_time([4] * 7) is None and epi.halving_time([4] * 7) is None


def test_min_cases_can_be_lowered():
    counts = [1, 1, 1, 2, 2, 3, 4]  # 14 cases
    assert epi.doubling_time(counts, min_cases=20) is None
    assert epi.doubling_time(counts, min_cases=5) > 0


def test_curves_fill_missing_days_and_keep_local_and_imported_apart():
    d = dt.date(2022, 3, 1)
    rows = [(d, False, 2), (d, False, 1), (d + dt.timedelta(days=2), True, 4), (d + dt.timedelta(days=3), False, 5),
            (d - dt.timedelta(days=1), False, 9), (d + dt.timedelta(days=9), True, 9)]  # the last two out of range
    curve = epi.epi_curve(rows, d, d + dt.timedelta(days=3))
    assert curve == {"dates": ["2022-03-01", "2022-03-02", "2022-03-03", "2022-03-04"],
                     "local": [3, 0, 0, 5], "imported": [0, 0, 4, 0]}
    assert epi.day_range(d, d - dt.timedelta(days=1)) == []


def test_rt_rows_have_the_contract_shape_with_inclusive_dates():
    first = dt.date(2022, 3, 1)
    windows = rt.estimate([10] * 9, None, si=[0.0, 1.0])
    rows = epi.rt_rows(windows, first)
    assert [list(r) for r in rows] == [["t_start", "t_end", "mean_r", "std_r", "q025", "q50", "q975"]] * 2
    assert (rows[0]["t_start"], rows[0]["t_end"]) == ("2022-03-02", "2022-03-08")
    assert (rows[1]["t_start"], rows[1]["t_end"]) == ("2022-03-03", "2022-03-09")
    assert rows[0]["mean_r"] == round(windows[0].mean_r, 4)


def test_rt_panel_reads_history_but_shows_from_the_given_day():
    first = dt.date(2022, 3, 1)
    local = [10 * 2 ** (t // 3) for t in range(30)]
    si = rt.discretise_si(4.7, 2.9)
    show_from = first + dt.timedelta(days=20)
    panel = epi.rt_panel(first, local, None, show_from=show_from, si=si, incomplete_days=0)
    all_rows = epi.rt_rows(rt.estimate(local, None, si=si), first)
    assert panel["rt"] == [r for r in all_rows if r["t_end"] >= show_from.isoformat()]
    assert panel["rt"][0]["t_end"] == show_from.isoformat()
    assert panel["rt_min_cases"] == 11
    # the counts double every 3 days (in steps): the last 7 days' fit gives about 3 days
    assert 2.0 < panel["doubling_time_days"] < 4.0 and panel["halving_time_days"] is None
    incomplete = epi.rt_panel(first, [*local[:-3], 0, 0, 0], None, show_from=show_from, si=si, incomplete_days=3)
    assert incomplete["doubling_time_days"] == round(epi.doubling_time(local[:-3]), 2)
