"""Time-varying reproduction number R_t by the method of Cori et al. (2013), pure Python.

Cori A, Ferguson NM, Fraser C, Cauchemez S. A new framework and software to estimate time-varying reproduction
numbers during epidemics. Am J Epidemiol 2013;178(9):1505–1512. The conventions follow the reference implementation,
the R package EpiEstim (``estimate_R`` with ``parametric_si``/``non_parametric_si``), so that our numbers can be
checked against its published output (the tests do, on the Flu2009 data set of its vignette):

* Days are indexed 0..T-1 here (EpiEstim counts 1..T). Sliding windows of ``window`` days (default 7) start on every
  day from the second one: start = 1..T-window, end = start+window-1, both inclusive (EpiEstim's default
  ``t_start = 2:(T-6)``, ``t_end = 8:T``). The first day never counts as offspring: it only seeds the infectiousness.
* Overall infectiousness Λ_t = Σ_{s=1..t} w_s·(local_{t-s} + imported_{t-s}): imported cases are sources of
  infection, but only local cases are offspring (the numerator below).
* Gamma prior on R with mean ``mean_prior`` and sd ``std_prior`` (default 5 and 5: shape a = (mean/sd)² = 1, scale
  b = sd²/mean = 5). The posterior over a window is gamma with shape a + Σ local_t and scale 1/(1/b + Σ Λ_t), the
  sums running over the window. Mean = shape·scale, sd = √shape·scale; the quantiles are those of that gamma.
* Windows are left out when nothing can be said from the data: when Σ Λ_t over the window is 0 (no earlier case could
  have infected anyone in it; the "estimate" would be the prior), and — as EpiEstim does — when the window ends on a
  day (counted from 1) not after the mean of the discrete serial interval.

The serial interval is a discrete distribution w_0..w_n with w_0 = 0 (no one infects on their own onset day). From a
mean and sd it is discretised as in the paper's web appendix 11 (EpiEstim ``discr_si``): the serial interval is 1 +
a gamma with mean ``mean - 1`` and sd ``sd`` and w_k = E[max(0, 1 - |SI - k|)] (the triangular kernel that spreads
continuous time over neighbouring days).

No scipy in the platform's environment: the gamma distribution function and its quantiles are computed here (series
and continued fraction for the regularised incomplete gamma, Wilson–Hilferty start, safeguarded Newton). The tests
check them against closed forms (shape 1 is exponential) and chi-square table values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

DEFAULT_WINDOW = 7
DEFAULT_MEAN_PRIOR = 5.0
DEFAULT_STD_PRIOR = 5.0
DEFAULT_CV_POSTERIOR = 0.3
# The serial interval used when neither the caller nor the policy gives one: SARS-CoV-2, Nishiura, Linton &
# Akhmetzhanov, Int J Infect Dis 2020;93:284–286 (mean 4.7 days, sd 2.9 days, from 28 early infector–infectee pairs).
# A local estimate (GET /api/v1/tracing/estimates) or the health authority's figure should replace it when known.
DEFAULT_SI_MEAN = 4.7
DEFAULT_SI_SD = 2.9

_EPS = 1e-15
_MAX_ITER = 100_000


# ---------------------------------------------------------------------------------------------------------- gamma


def gamma_cdf(x: float, shape: float, scale: float = 1.0) -> float:
    """P(X ≤ x) for X ~ gamma(shape, scale): the regularised lower incomplete gamma P(shape, x/scale).

    Series for x < shape+1, Lentz's continued fraction for the upper tail otherwise (Numerical Recipes §6.2), both
    to full double precision.
    """
    if shape <= 0 or scale <= 0:
        raise ValueError("gamma shape and scale must be > 0")
    z = x / scale
    if z <= 0:
        return 0.0
    if math.isinf(z):
        return 1.0
    log_prefactor = shape * math.log(z) - z - math.lgamma(shape)
    if z < shape + 1:
        term = total = 1.0 / shape
        n = 0
        while abs(term) > abs(total) * _EPS and n < _MAX_ITER:
            n += 1
            term *= z / (shape + n)
            total += term
        return min(1.0, total * math.exp(log_prefactor))
    tiny = 1e-300
    b = z + 1.0 - shape
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - shape)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return max(0.0, 1.0 - math.exp(log_prefactor) * h)


def _gamma_log_pdf(z: float, shape: float) -> float:
    return (shape - 1.0) * math.log(z) - z - math.lgamma(shape)


def gamma_quantile(p: float, shape: float, scale: float = 1.0) -> float:
    """The x with P(X ≤ x) = p for X ~ gamma(shape, scale).

    Starts from the Wilson–Hilferty approximation (or, for small shapes, from P(a, z) ≈ z^a / Γ(a+1)), then Newton
    steps on the distribution function kept inside a bracket that bisection shrinks whenever Newton would leave it.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError("p must lie in [0, 1]")
    if shape <= 0 or scale <= 0:
        raise ValueError("gamma shape and scale must be > 0")
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return math.inf
    a = shape
    normal = NormalDist().inv_cdf(p)
    wh = a * (1.0 - 1.0 / (9.0 * a) + normal * math.sqrt(1.0 / (9.0 * a))) ** 3
    small = math.exp((math.log(p) + math.lgamma(a + 1.0)) / a)  # inverse of z^a / Γ(a+1), good when z ≪ 1
    z = wh if wh > 0 and a >= 1 else min(small, wh) if wh > 0 else small
    if z <= 0.0:  # below the smallest double
        return 0.0
    lo, hi = 0.0, math.inf  # the root stays in [lo, hi]; Newton steps that leave it are replaced by bisection
    for _ in range(500):
        f = gamma_cdf(z, a) - p
        if f == 0.0:
            break
        if f < 0:
            lo = z
        else:
            hi = z
        log_pdf = _gamma_log_pdf(z, a)
        candidate = z - f / math.exp(log_pdf) if log_pdf > -700 else math.nan
        if not lo < candidate < hi:
            if math.isinf(hi):
                candidate = 2.0 * z
            elif lo > 0 and hi / lo > 4:
                candidate = math.sqrt(lo * hi)
            else:
                candidate = (lo + hi) / 2.0
        # 1e-12: the distribution function itself is accurate to ~1e-13 relative for shapes in the millions, so
        # asking for more would only make Newton chase rounding noise
        if abs(candidate - z) <= 1e-12 * z:
            z = candidate
            break
        z = candidate
    return z * scale


# --------------------------------------------------------------------------------------------------- serial interval


def discretise_si(mean: float, sd: float, max_days: int | None = None) -> list[float]:
    """The discrete serial interval w_0..w_max_days from a mean and sd (EpiEstim ``discr_si``; w_0 = 0).

    The serial interval is taken as 1 + gamma(shape (mean-1)²/sd², scale sd²/(mean-1)), so ``mean`` must exceed 1
    and ``sd`` be positive. With ``max_days=None`` the distribution runs until the mass left is below 1e-9 (at most
    10,000 days); the estimate only ever uses w_s for s below the length of the series, so a longer list is harmless.
    """
    if not (math.isfinite(mean) and mean > 1):
        raise ValueError("the serial interval mean must be greater than 1 (the discretisation shifts it by one day)")
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError("the serial interval sd must be greater than 0")
    if max_days is not None and max_days < 1:
        raise ValueError("max_days must be at least 1")
    shape = ((mean - 1.0) / sd) ** 2
    scale = sd * sd / (mean - 1.0)

    def cdf(x: float, a: float) -> float:
        return gamma_cdf(x, a, scale) if x > 0 else 0.0

    out: list[float] = []
    total = 0.0
    k = 0
    while True:
        w = (k * cdf(k, shape) + (k - 2) * cdf(k - 2, shape) - 2 * (k - 1) * cdf(k - 1, shape)
             + shape * scale * (2 * cdf(k - 1, shape + 1) - cdf(k - 2, shape + 1) - cdf(k, shape + 1)))
        w = max(0.0, w)
        out.append(w)
        total += w
        if max_days is not None:
            if k >= max_days:
                break
        elif (k > mean and 1.0 - total < 1e-9) or k >= 10_000:
            break
        k += 1
    return out


def check_si(si: Sequence[float]) -> list[float]:
    """The serial interval as floats, refused when it cannot be one: w_0 ≠ 0, a negative or non-finite value, fewer
    than two values, or a sum above 1 by more than EpiEstim's tolerance (0.01). A sum below 1 is accepted: a
    parametric distribution cut at the length of the series is short of 1, as in EpiEstim."""
    values = [float(v) for v in si]
    if len(values) < 2:
        raise ValueError("the serial interval needs at least two values (day 0 and day 1)")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError("the serial interval must contain only finite values ≥ 0")
    if values[0] != 0:
        raise ValueError("the serial interval must be 0 on day 0")
    if sum(values) > 1.01:
        raise ValueError(f"the serial interval must sum to 1 (it sums to {sum(values):.4f})")
    if sum(values) <= 0:
        raise ValueError("the serial interval is 0 everywhere")
    return values


# --------------------------------------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class RtWindow:
    """R over the days ``start``..``end`` (indices into the series, both inclusive) with its gamma posterior."""

    start: int
    end: int
    mean_r: float
    std_r: float
    q025: float
    q50: float
    q975: float
    shape: float  # posterior gamma shape = prior shape + local cases in the window
    scale: float  # posterior gamma scale
    cases: int  # local cases in the window (the offspring the estimate rests on)

    @property
    def cv(self) -> float:
        """Posterior coefficient of variation (sd / mean = 1/√shape): the dashboard shows R when it is ≤ 0.3."""
        return 1.0 / math.sqrt(self.shape)


def prior_shape_scale(mean_prior: float, std_prior: float) -> tuple[float, float]:
    """Gamma shape and scale of the prior with the given mean and sd."""
    if not (math.isfinite(mean_prior) and mean_prior > 0):
        raise ValueError("the prior mean must be greater than 0")
    if not (math.isfinite(std_prior) and std_prior > 0):
        raise ValueError("the prior sd must be greater than 0")
    return (mean_prior / std_prior) ** 2, std_prior ** 2 / mean_prior


def min_cases(cv: float = DEFAULT_CV_POSTERIOR, mean_prior: float = DEFAULT_MEAN_PRIOR,
              std_prior: float = DEFAULT_STD_PRIOR) -> int:
    """Local cases a window needs for a posterior CV of at most ``cv`` (EpiEstim's ``cv_posterior`` rule).

    The posterior CV is 1/√(a + cases), so cases ≥ 1/cv² − a; with cv 0.3 and the default prior (a = 1) that is 11.
    """
    if not (math.isfinite(cv) and cv > 0):
        raise ValueError("cv must be greater than 0")
    a_prior, _ = prior_shape_scale(mean_prior, std_prior)
    return max(0, math.ceil(1.0 / cv ** 2 - a_prior - 1e-9))


def _counts(values: Sequence[int], name: str) -> list[int]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not float(v).is_integer() or v < 0:
            raise ValueError(f"{name}[{i}] must be a whole number ≥ 0, not {v!r}")
        out.append(int(v))
    return out


def overall_infectivity(local: Sequence[int], imported: Sequence[int], si: Sequence[float]) -> list[float]:
    """Λ_t = Σ_{s=1..t} w_s·(local + imported)_{t-s} for every day t (Λ_0 = 0: nothing is known before day 0)."""
    total = [a + b for a, b in zip(local, imported, strict=True)]
    width = len(si)
    return [sum(si[s] * total[t - s] for s in range(1, min(t, width - 1) + 1)) for t in range(len(total))]


def estimate(local: Sequence[int], imported: Sequence[int] | None = None, *, si: Sequence[float],
             window: int = DEFAULT_WINDOW, mean_prior: float = DEFAULT_MEAN_PRIOR,
             std_prior: float = DEFAULT_STD_PRIOR) -> list[RtWindow]:
    """R_t on sliding windows over consecutive daily counts (see the module docstring for every convention).

    ``imported`` may be None (no imported cases are known): the first day's cases then only seed the epidemic,
    exactly as when they are called imported, since day 0 is never inside a window. Raises ValueError on input that
    is not counts, a serial interval that is not one, or a bad window or prior.
    """
    local_counts = _counts(local, "local")
    imported_counts = [0] * len(local_counts) if imported is None else _counts(imported, "imported")
    if len(imported_counts) != len(local_counts):
        raise ValueError("local and imported must have the same length (one value per day)")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError("the window must be a whole number of days ≥ 1")
    weights = check_si(si)
    a_prior, b_prior = prior_shape_scale(mean_prior, std_prior)
    days = len(local_counts)
    if days < window + 1:
        return []
    lam = overall_infectivity(local_counts, imported_counts, weights)
    # EpiEstim's rule uses the mean of the distribution it was given (for mean/sd it builds one cut at day T-1, and
    # so does the CLI); a distribution summing to less than 1 is not rescaled for it, as in EpiEstim
    mean_si = sum(k * w for k, w in enumerate(weights))
    out: list[RtWindow] = []
    for start in range(1, days - window + 1):
        end = start + window - 1
        if end + 1 <= mean_si:
            continue
        lam_sum = sum(lam[start:end + 1])
        if lam_sum <= 0:
            continue
        cases = sum(local_counts[start:end + 1])
        shape = a_prior + cases
        scale = 1.0 / (1.0 / b_prior + lam_sum)
        out.append(RtWindow(start=start, end=end, mean_r=shape * scale, std_r=math.sqrt(shape) * scale,
                            q025=gamma_quantile(0.025, shape, scale), q50=gamma_quantile(0.5, shape, scale),
                            q975=gamma_quantile(0.975, shape, scale), shape=shape, scale=scale, cases=cases))
    return out
