"""Epidemic-curve helpers for the dashboard and the CLI (pure: no database).

* Curves: daily counts on a fixed range of days, missing days as 0, local and imported apart, ready for plotting
  and for :func:`jingkong.analytics.rt.estimate`; R_t windows turned into the rows of the ``/epi`` answer.
* Growth: the exponential growth rate r of the last ``window`` days (default 7) and the doubling time ln 2 / r
  (r > 0) or halving time ln 2 / −r (r < 0).

  Method: Poisson regression of the daily counts on the day, log E[count_t] = α + r·t, fitted by maximum likelihood
  (Newton–Raphson, i.e. IRLS). Unlike least squares on log(count) it needs no fudge for days with 0 cases and weighs
  each day by its information, so a day with 1 case does not swing the line as much as a day with 100. The window is
  the last ``window`` days before ``skip_last`` trailing days (pass the days whose reports are still incomplete,
  which would fake a decline). The answer is None when the window holds fewer than ``min_cases`` cases (default 10),
  when the cases fall on fewer than two days (no line can be fitted: the likelihood has no maximum) or when the
  series is shorter than the window.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jingkong.analytics import rt
from jingkong.analytics.rt import RtWindow

DEFAULT_GROWTH_WINDOW = 7
DEFAULT_GROWTH_MIN_CASES = 10


# ---------------------------------------------------------------------------------------------------------- curves


def day_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from ``start`` to ``end``, both included (empty when end < start)."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def daily_counts(rows: Iterable[tuple[dt.date, int]], start: dt.date, end: dt.date) -> list[int]:
    """Counts per day on start..end from (day, n) rows: rows of one day add up, missing days are 0 and days outside
    the range are ignored (the caller reads a little more than it shows without having to trim)."""
    out = [0] * ((end - start).days + 1)
    for day, n in rows:
        index = (day - start).days
        if 0 <= index < len(out):
            out[index] += int(n)
    return out


def epi_curve(rows: Iterable[tuple[dt.date, bool, int]], start: dt.date, end: dt.date) -> dict:
    """``{"dates": [...iso], "local": [...], "imported": [...]}`` from (day, imported?, n) rows."""
    rows = list(rows)
    return {"dates": [d.isoformat() for d in day_range(start, end)],
            "local": daily_counts(((d, n) for d, imported, n in rows if not imported), start, end),
            "imported": daily_counts(((d, n) for d, imported, n in rows if imported), start, end)}


def rt_rows(windows: Sequence[RtWindow], first_day: dt.date, *, digits: int = 4) -> list[dict]:
    """The ``rt`` list of the ``/epi`` answer: window indices turned into dates (``first_day`` is index 0), both
    inclusive, numbers rounded to ``digits`` decimals."""
    return [{"t_start": (first_day + dt.timedelta(days=w.start)).isoformat(),
             "t_end": (first_day + dt.timedelta(days=w.end)).isoformat(),
             "mean_r": round(w.mean_r, digits), "std_r": round(w.std_r, digits), "q025": round(w.q025, digits),
             "q50": round(w.q50, digits), "q975": round(w.q975, digits)} for w in windows]


# ---------------------------------------------------------------------------------------------------------- growth


@dataclass(frozen=True)
class Growth:
    """Exponential growth over the days ``start``..``end`` (indices, inclusive) of a series."""

    start: int
    end: int
    cases: int
    rate: float  # r per day
    rate_low: float  # 95% Wald interval of r
    rate_high: float

    @property
    def doubling_time(self) -> float | None:
        return math.log(2) / self.rate if self.rate > 0 else None

    @property
    def halving_time(self) -> float | None:
        return math.log(2) / -self.rate if self.rate < 0 else None


def _poisson_fit(counts: Sequence[int]) -> tuple[float, float] | None:
    """(slope, its standard error) of log E[y_t] = α + r·t by maximum likelihood; None when it does not converge."""
    n = len(counts)
    xs = [i - (n - 1) / 2 for i in range(n)]  # centred: α and r nearly uncorrelated, Newton converges fast
    alpha, slope = math.log(sum(counts) / n), 0.0

    def loglik(a: float, b: float) -> float:
        return sum(y * (a + b * x) - math.exp(a + b * x) for x, y in zip(xs, counts, strict=True))

    current = loglik(alpha, slope)
    for _ in range(200):
        mu = [math.exp(alpha + slope * x) for x in xs]
        g0 = sum(y - m for y, m in zip(counts, mu, strict=True))
        g1 = sum(x * (y - m) for x, y, m in zip(xs, counts, mu, strict=True))
        h00 = sum(mu)
        h01 = sum(x * m for x, m in zip(xs, mu, strict=True))
        h11 = sum(x * x * m for x, m in zip(xs, mu, strict=True))
        det = h00 * h11 - h01 * h01
        if det <= 0 or not math.isfinite(det):
            return None
        d0 = (h11 * g0 - h01 * g1) / det
        d1 = (h00 * g1 - h01 * g0) / det
        step = 1.0
        while step > 1e-6:  # step halving keeps every iteration uphill
            candidate = loglik(alpha + step * d0, slope + step * d1)
            if candidate >= current - 1e-12:
                break
            step /= 2
        alpha, slope, current = alpha + step * d0, slope + step * d1, candidate
        if abs(step * d1) < 1e-12 and abs(step * d0) < 1e-12:
            mu = [math.exp(alpha + slope * x) for x in xs]
            h00 = sum(mu)
            h01 = sum(x * m for x, m in zip(xs, mu, strict=True))
            h11 = sum(x * x * m for x, m in zip(xs, mu, strict=True))
            return slope, math.sqrt(h00 / (h00 * h11 - h01 * h01))
    return None


def growth(counts: Sequence[int], window: int = DEFAULT_GROWTH_WINDOW, *, skip_last: int = 0,
           min_cases: int = DEFAULT_GROWTH_MIN_CASES) -> Growth | None:
    """Growth rate over the last ``window`` days before ``skip_last`` trailing days (see the module docstring)."""
    if window < 2:
        raise ValueError("the growth window must be at least 2 days")
    if skip_last < 0:
        raise ValueError("skip_last must be ≥ 0")
    if any(isinstance(c, bool) or c < 0 for c in counts):
        raise ValueError("counts must be ≥ 0")
    end = len(counts) - skip_last  # exclusive
    start = end - window
    if start < 0:
        return None
    part = [int(c) for c in counts[start:end]]
    cases = sum(part)
    if cases < min_cases or sum(1 for c in part if c > 0) < 2:
        return None
    fitted = _poisson_fit(part)
    if fitted is None:
        return None
    slope, se = fitted
    return Growth(start=start, end=end - 1, cases=cases, rate=slope, rate_low=slope - 1.96 * se,
                  rate_high=slope + 1.96 * se)


def doubling_time(counts: Sequence[int], window: int = DEFAULT_GROWTH_WINDOW, *, skip_last: int = 0,
                  min_cases: int = DEFAULT_GROWTH_MIN_CASES) -> float | None:
    """Days for the daily count to double at the growth of the window; None unless it grows (or too few cases)."""
    fitted = growth(counts, window, skip_last=skip_last, min_cases=min_cases)
    return fitted.doubling_time if fitted else None


def halving_time(counts: Sequence[int], window: int = DEFAULT_GROWTH_WINDOW, *, skip_last: int = 0,
                 min_cases: int = DEFAULT_GROWTH_MIN_CASES) -> float | None:
    """Days for the daily count to halve at the decline of the window; None unless it declines (or too few cases)."""
    fitted = growth(counts, window, skip_last=skip_last, min_cases=min_cases)
    return fitted.halving_time if fitted else None


# ---------------------------------------------------------------------------------------------------- the /epi panel


def rt_panel(first_day: dt.date, local: Sequence[int], imported: Sequence[int] | None, *, show_from: dt.date,
             si: Sequence[float], window: int = 7, incomplete_days: int = 0, mean_prior: float = 5.0,
             std_prior: float = 5.0, growth_window: int = DEFAULT_GROWTH_WINDOW) -> dict:
    """The R_t and growth part of the ``/epi`` answer from daily counts starting on ``first_day``.

    Pass counts from well before ``show_from`` (a month is plenty): the infectiousness of the first days shown comes
    from the cases before them. Windows ending before ``show_from`` are dropped. Growth is that of the local cases
    over the last ``growth_window`` days before the ``incomplete_days`` still being reported (which would fake a
    decline); R_t windows are all returned and the page may shade those ending in the incomplete days.
    """
    windows = rt.estimate(local, imported, si=si, window=window, mean_prior=mean_prior, std_prior=std_prior)
    offset = (show_from - first_day).days
    fitted = growth(local, growth_window, skip_last=incomplete_days)
    return {"rt": rt_rows([w for w in windows if w.end >= offset], first_day),
            "rt_min_cases": rt.min_cases(mean_prior=mean_prior, std_prior=std_prior),
            "doubling_time_days": round(fitted.doubling_time, 2) if fitted and fitted.doubling_time else None,
            "halving_time_days": round(fitted.halving_time, 2) if fitted and fitted.halving_time else None}
