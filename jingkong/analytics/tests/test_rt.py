"""R_t by Cori et al. (2013): gamma functions, serial interval discretisation and the estimate, checked against
closed forms, statistical tables, numerical integration and EpiEstim's published output — never against our own
output."""

from __future__ import annotations

import math

import pytest

from jingkong.analytics import rt

# EpiEstim's Flu2009 data set (pandemic influenza in a school in Pennsylvania, 2009-04-27 .. 2009-05-28), as printed
# by `Flu2009$incidence` in EpiEstim's documentation and vignette.
FLU2009 = [1, 1, 0, 2, 5, 3, 3, 3, 6, 2, 5, 9, 13, 12, 13, 11, 12, 6, 6, 6, 3, 1, 0, 2, 0, 0, 0, 0, 2, 0, 2, 0]

# `head(estimate_R(Flu2009$incidence, method = "parametric_si", config = make_config(list(mean_si = 2.6,
# std_si = 1.5)))$R)` as printed by EpiEstim (vignette "EpiEstim: a demonstration"): t_start, t_end (days counted
# from 1), Mean(R), Std(R), Quantile.0.025(R), Median(R), Quantile.0.975(R).
FLU2009_PUBLISHED = [
    (2, 8, 1.735798, 0.4091314, 1.0287437, 1.703761, 2.624781),
    (3, 9, 1.749168, 0.3647267, 1.1088223, 1.723884, 2.533119),
    (4, 10, 1.537058, 0.3074116, 0.9947030, 1.516613, 2.195540),
    (5, 11, 1.431839, 0.2705921, 0.9514466, 1.414830, 2.008849),
    (6, 12, 1.422725, 0.2515046, 0.9731426, 1.407932, 1.956336),
    (7, 13, 1.635373, 0.2523436, 1.1786332, 1.622413, 2.165745),
]

# `discr_si(0:20, mu = 2.6, sigma = 1.5)` as printed by EpiEstim.
DISCR_SI_PUBLISHED = [0.0, 2.331721e-01, 3.585794e-01, 1.981108e-01, 1.033427e-01, 5.290518e-02, 2.682146e-02,
                      1.351620e-02, 6.783438e-03, 3.394351e-03, 1.694674e-03, 8.445945e-04, 4.203313e-04, 2.089422e-04,
                      1.037609e-04, 5.148480e-05, 2.552773e-05, 1.264952e-05, 6.264667e-06, 3.101068e-06,
                      1.534394e-06]


# ------------------------------------------------------------------------------------------------ gamma functions


@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 2.5, 7.0, 30.0])
@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_gamma_cdf_matches_the_erlang_closed_form(k, x):
    # For an integer shape k, P(k, x) = 1 - e^-x Σ_{n<k} x^n / n!
    expected = 1 - math.exp(-x) * sum(x ** n / math.factorial(n) for n in range(k))
    assert rt.gamma_cdf(x, k) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert rt.gamma_cdf(3 * x, k, scale=3) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_gamma_cdf_half_shape_is_the_error_function():
    # chi-square with 1 degree of freedom: P(1/2, x) = erf(√x)
    for x in (0.001, 0.3, 1.0, 4.0, 12.0):
        assert rt.gamma_cdf(x, 0.5) == pytest.approx(math.erf(math.sqrt(x)), rel=1e-12)


@pytest.mark.parametrize("p", [0.001, 0.025, 0.5, 0.975, 0.999])
@pytest.mark.parametrize("scale", [1.0, 0.2, 7.0])
def test_exponential_quantiles_are_closed_form(p, scale):
    assert rt.gamma_quantile(p, 1.0, scale) == pytest.approx(-math.log(1 - p) * scale, rel=1e-10)


@pytest.mark.parametrize(("df", "p", "table"), [
    # chi-square critical values from standard tables (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.4)
    (1, 0.95, 3.841), (1, 0.99, 6.635), (2, 0.95, 5.991), (5, 0.05, 1.145), (10, 0.025, 3.247), (10, 0.975, 20.483),
    (30, 0.5, 29.336), (100, 0.025, 74.222), (100, 0.975, 129.561),
])
def test_chi_square_table_values(df, p, table):
    # chi-square(df) is gamma(shape df/2, scale 2)
    assert rt.gamma_quantile(p, df / 2, 2.0) == pytest.approx(table, abs=1.5e-3)


@pytest.mark.parametrize("shape", [0.05, 0.5, 0.7111, 1.0, 3.7, 11.0, 250.0, 20_000.0])
@pytest.mark.parametrize("p", [0.001, 0.025, 0.5, 0.975])
def test_quantile_inverts_the_distribution_function(shape, p):
    x = rt.gamma_quantile(p, shape, 2.5)
    assert rt.gamma_cdf(x, shape, 2.5) == pytest.approx(p, rel=1e-9)


def test_large_shape_quantiles_approach_the_normal():
    # gamma(a) ≈ normal(a, √a) for large a: the 97.5% quantile is a + 1.96√a within a skewness correction of ~z²/3
    a = 1e6
    assert rt.gamma_quantile(0.975, a) == pytest.approx(a + 1.959964 * 1000 + (1.959964 ** 2 - 1) / 3, abs=0.05)


def test_gamma_arguments_are_checked():
    with pytest.raises(ValueError):
        rt.gamma_quantile(1.5, 2.0)
    with pytest.raises(ValueError):
        rt.gamma_cdf(1.0, 0.0)
    assert rt.gamma_quantile(0.0, 2.0) == 0.0 and rt.gamma_quantile(1.0, 2.0) == math.inf


# ------------------------------------------------------------------------------------------------- serial interval


def test_discretised_si_matches_epiestim_discr_si():
    values = rt.discretise_si(2.6, 1.5, max_days=20)
    assert len(values) == 21
    for ours, published in zip(values, DISCR_SI_PUBLISHED, strict=True):
        assert ours == pytest.approx(published, rel=1e-6, abs=1e-12)


def _trapezoid_w(k: int, mean: float, sd: float, steps: int = 20_000) -> float:
    """w_k = ∫ max(0, 1 - |1 + u - k|) g(u) du with g the gamma density of SI - 1, by the trapezoid rule."""
    shape = ((mean - 1) / sd) ** 2
    scale = sd * sd / (mean - 1)

    def g(u):
        return 0.0 if u <= 0 else math.exp((shape - 1) * math.log(u) - u / scale - math.lgamma(shape)
                                           - shape * math.log(scale))

    lo, hi = max(0.0, k - 2.0), max(0.0, float(k))
    if hi <= lo:
        return 0.0
    h = (hi - lo) / steps
    total = 0.0
    for i in range(steps + 1):
        u = lo + i * h
        f = max(0.0, 1 - abs(1 + u - k)) * g(u)
        total += f / 2 if i in (0, steps) else f
    return total * h


def test_discretised_si_equals_numerical_integration_of_the_shifted_gamma():
    mean, sd = 5.4, 2.0  # shape 4.84: a smooth density the trapezoid rule integrates well
    values = rt.discretise_si(mean, sd, max_days=25)
    for k in range(0, 26):
        assert values[k] == pytest.approx(_trapezoid_w(k, mean, sd), abs=1e-7)


def test_discretised_si_keeps_the_mean_and_sums_to_one():
    for mean, sd in ((2.6, 1.5), (5.4, 2.0), (7.5, 3.4), (4.7, 2.9)):
        values = rt.discretise_si(mean, sd)
        assert values[0] == 0.0 and min(values) >= 0
        assert sum(values) == pytest.approx(1.0, abs=1e-8)
        # the triangular kernel is symmetric, so the discrete distribution keeps the continuous mean
        assert sum(k * w for k, w in enumerate(values)) == pytest.approx(mean, abs=1e-6)


@pytest.mark.parametrize(("mean", "sd"), [(1.0, 1.0), (0.5, 1.0), (3.0, 0.0), (3.0, -1.0), (math.nan, 1.0)])
def test_discretisation_refuses_impossible_parameters(mean, sd):
    with pytest.raises(ValueError):
        rt.discretise_si(mean, sd)


# ------------------------------------------------------------------------------------------------------ estimate


def test_flu2009_matches_epiestim_published_estimates():
    si = rt.discretise_si(2.6, 1.5, max_days=len(FLU2009) - 1)  # estimate_R uses discr_si(0:(T-1), ...)
    windows = rt.estimate(FLU2009, None, si=si)
    assert len(windows) == len(FLU2009) - 7  # t_start = 2..T-6, nothing left out
    for w, (t_start, t_end, mean, std, q025, median, q975) in zip(windows, FLU2009_PUBLISHED, strict=False):
        assert (w.start + 1, w.end + 1) == (t_start, t_end)
        assert w.mean_r == pytest.approx(mean, rel=1e-6)
        assert w.std_r == pytest.approx(std, rel=1e-6)
        assert w.q025 == pytest.approx(q025, rel=1e-6)
        assert w.q50 == pytest.approx(median, rel=1e-6)
        assert w.q975 == pytest.approx(q975, rel=1e-6)


def test_constant_incidence_with_a_one_day_serial_interval():
    # Every day c cases, each infected by the previous day's cases: Λ_t = c from day 1 on, so over a 7-day window
    # the posterior is gamma(1 + 7c, 1/(1/5 + 7c)).
    c = 10
    windows = rt.estimate([c] * 20, [0] * 20, si=[0.0, 1.0])
    assert [(w.start, w.end) for w in windows] == [(s, s + 6) for s in range(1, 14)]
    shape, scale = 1 + 7 * c, 1 / (1 / 5 + 7 * c)
    for w in windows:
        assert w.mean_r == pytest.approx(shape * scale) and w.std_r == pytest.approx(math.sqrt(shape) * scale)
        assert w.q975 == pytest.approx(rt.gamma_quantile(0.975, shape) * scale)
        assert w.cases == 7 * c and w.shape == shape


def test_imported_cases_are_sources_but_not_offspring():
    days = 15
    only_imported = rt.estimate([0] * days, [10] * days, si=[0.0, 1.0])
    # no local offspring at all: the posterior mean is the prior shape over (1/5 + Σ Λ) with Λ_t = 10
    assert only_imported[0].mean_r == pytest.approx(1 / (1 / 5 + 70))
    # the same cases called local are offspring as well
    as_local = rt.estimate([10] * days, [0] * days, si=[0.0, 1.0])
    assert as_local[0].mean_r == pytest.approx(71 / (1 / 5 + 70))
    # half of each day's cases imported: sources unchanged, offspring halved
    half = rt.estimate([5] * days, [5] * days, si=[0.0, 1.0])
    assert half[0].mean_r == pytest.approx(36 / (1 / 5 + 70))


def test_first_day_cases_only_seed_the_epidemic():
    local = [4, 2, 3, 5, 1, 0, 2, 6, 3, 2]
    si = rt.discretise_si(2.6, 1.5, max_days=9)
    as_local = rt.estimate(local, [0] * 10, si=si)
    as_imported = rt.estimate([0, *local[1:]], [4] + [0] * 9, si=si)
    assert [w.mean_r for w in as_local] == [w.mean_r for w in as_imported]
    assert rt.estimate(local, None, si=si) == as_local


def test_windows_without_infectiousness_are_left_out():
    # cases only from day 9 on: no window ending before day 10 has a possible infector
    local = [0] * 9 + [3] * 11
    windows = rt.estimate(local, None, si=[0.0, 0.5, 0.5])
    assert windows[0].start == 4 and windows[0].end == 10  # the first window whose Λ sum is > 0 (Λ_10 = 1.5)
    assert all(sum(local[w.start - 2:w.end]) > 0 for w in windows)


def test_windows_ending_before_the_mean_serial_interval_are_left_out():
    # half the mass on day 1 and half on day 15: mean 8; windows ending on day 8 or earlier (counted from 1) go
    si = [0.0, 0.5] + [0.0] * 13 + [0.5]
    windows = rt.estimate([5] * 20, None, si=si, window=3)
    assert windows[0].end + 1 == 9 and windows[0].start == 6


def test_window_length_and_short_series():
    assert rt.estimate([1] * 7, None, si=[0.0, 1.0], window=7) == []
    one = rt.estimate([1] * 8, None, si=[0.0, 1.0], window=7)
    assert [(w.start, w.end) for w in one] == [(1, 7)]
    daily = rt.estimate([3] * 5, None, si=[0.0, 1.0], window=1)
    assert [(w.start, w.end) for w in daily] == [(1, 1), (2, 2), (3, 3), (4, 4)]


def test_prior_is_used():
    # mean 2, sd 1 → shape 4, scale 1/2
    w = rt.estimate([10] * 9, None, si=[0.0, 1.0], mean_prior=2, std_prior=1)[0]
    assert w.mean_r == pytest.approx((4 + 70) / (2 + 70))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"local": [1, -1, 2], "si": [0, 1]}, "local"),
    ({"local": [1, 1.5, 2], "si": [0, 1]}, "local"),
    ({"local": [1, 2, 3], "imported": [0, 0], "si": [0, 1]}, "same length"),
    ({"local": [1, 2, 3], "si": [0.2, 0.8]}, "day 0"),
    ({"local": [1, 2, 3], "si": [0, 0.8, 0.5]}, "sum"),
    ({"local": [1, 2, 3], "si": [0, -0.1, 1.1]}, "≥ 0"),
    ({"local": [1, 2, 3], "si": [0, 1], "window": 0}, "window"),
    ({"local": [1, 2, 3], "si": [0, 1], "mean_prior": 0}, "prior"),
])
def test_bad_input_is_refused_with_a_reason(kwargs, match):
    local = kwargs.pop("local")
    imported = kwargs.pop("imported", None)
    with pytest.raises(ValueError, match=match):
        rt.estimate(local, imported, **kwargs)


def test_min_cases_rule():
    assert rt.min_cases() == 11  # EpiEstim: ceiling(1/0.3² − 1)
    assert rt.min_cases(cv=0.5) == 3
    assert rt.min_cases(cv=0.3, mean_prior=2, std_prior=1) == 8  # prior shape 4
    # the rule means: with that many local cases the posterior CV is at most cv, with one fewer above it
    needed = rt.min_cases()
    si = [0.0, 1.0]
    enough = rt.estimate([1, needed], None, si=si, window=1)  # the one window (day 1) holds exactly `needed` cases
    fewer = rt.estimate([1, needed - 1], None, si=si, window=1)
    assert enough and enough[0].cases == needed and enough[0].cv <= 0.3
    assert fewer and fewer[0].cases == needed - 1 and fewer[0].cv > 0.3
    assert enough[0].std_r / enough[0].mean_r == pytest.approx(enough[0].cv)
