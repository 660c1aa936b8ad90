"""Pool-size planning for Dorfman two-stage pooled testing (混检). Pure: no Django, no database.

The scheme (Dorfman 1943)
-------------------------
``n`` people are swabbed into tubes of ``k`` swabs each (k-in-1). Stage 1 tests every tube once. Stage 2 retests every
member of a tube that tested positive individually (single tubes, 单管复核). ``k = 1`` is individual testing: one test per
person and no second stage.

Assumptions: each person is infected independently with probability ``p`` (the prevalence); a tube containing at least
one infected swab tests positive with probability ``S`` (sensitivity), a tube without one tests negative with
probability ``Q`` (specificity); the same ``S`` and ``Q`` hold for single tubes and pools (no dilution effect, no
correlation between the two stages).

Derivation
----------
A pool of ``k`` contains no infected swab with probability ``(1 - p)^k``, so it *tests* positive with probability::

    π(k) = S·(1 - (1-p)^k) + (1 - Q)·(1-p)^k = S - (S + Q - 1)·(1-p)^k

A pool costs one test plus ``k`` retests when it tests positive, i.e. ``1 + k·π(k)`` tests for ``k`` people::

    E(k)/n = 1/k + S - (S + Q - 1)·(1 - p)^k        (k ≥ 2)
    E(1)/n = 1                                       (individual testing)

For a perfect test (S = Q = 1) this is Dorfman's ``1/k + 1 - (1-p)^k``: at p = 1 % the optimum is k = 11 with 0.1956
tests per person (Dorfman's table; Samuels 1978: k* ≈ 1 + 1/√p), at p = 5 % k = 5 (0.4262), at p = 10 % k = 4
(0.5939); above p = 1 - 3^(-1/3) ≈ 30.7 % no pool beats individual testing.

Accuracy of the whole scheme (a person is reported positive only when both their pool and their own retest are):

* sensitivity ``S²`` (k ≥ 2; ``S`` for k = 1);
* specificity ``1 - (1 - Q)·π'(k)`` where ``π'(k) = S·(1 - (1-p)^(k-1)) + (1 - Q)·(1-p)^(k-1)`` is the probability
  that the pool of an uninfected person tests positive (its other ``k - 1`` members decide); ``Q`` for k = 1.

From pool results back to prevalence: if a share ``r`` of the swabs sit in tubes that tested positive and tubes hold
``k`` swabs, ``1 - (1-p)^k = r`` gives ``p = 1 - (1 - r)^(1/k)`` (perfect test; see :func:`implied_prevalence`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

MAX_POOL_SIZE = 50  # planning is meaningful far beyond what any profile allows; the tube model holds at most 20
_TIE = 1e-12  # sizes whose expected tests differ by less than this are equally good: the smaller pool wins


class PoolingError(ValueError):
    """A planning input out of range; ``field`` names it (``prevalence``, ``max_size``, ...)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


def check_inputs(*, prevalence: float, max_size: int = 20, sensitivity: float = 1.0, specificity: float = 1.0) -> None:
    """Raise :class:`PoolingError` naming the first bad argument."""
    if not isinstance(prevalence, int | float) or math.isnan(prevalence) or not 0.0 < prevalence < 1.0:
        raise PoolingError("prevalence", f"must lie strictly between 0 and 1 (a share, e.g. 0.01 for 1 %), got {prevalence}")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise PoolingError("max_size", f"must be a whole number ≥ 1, got {max_size}")
    if max_size > MAX_POOL_SIZE:
        raise PoolingError("max_size", f"must be at most {MAX_POOL_SIZE}, got {max_size}")
    for name, value in (("sensitivity", sensitivity), ("specificity", specificity)):
        if not isinstance(value, int | float) or math.isnan(value) or not 0.0 < value <= 1.0:
            raise PoolingError(name, f"must lie in (0, 1], got {value}")


def pool_positive_probability(k: int, p: float, sensitivity: float = 1.0, specificity: float = 1.0) -> float:
    """π(k): the probability that a tube of ``k`` swabs tests positive."""
    return sensitivity - (sensitivity + specificity - 1.0) * (1.0 - p) ** k


def expected_tests_per_person(k: int, p: float, sensitivity: float = 1.0, specificity: float = 1.0) -> float:
    """E(k)/n: expected tests (stage-1 tubes plus stage-2 single retests) per person sampled."""
    if k < 1:
        raise PoolingError("size", f"a pool holds at least 1 swab, got {k}")
    if k == 1:
        return 1.0
    return 1.0 / k + pool_positive_probability(k, p, sensitivity, specificity)


def scheme_sensitivity(k: int, sensitivity: float = 1.0) -> float:
    """Probability that an infected person is reported positive (pool and retest must both detect them)."""
    return sensitivity if k == 1 else sensitivity * sensitivity


def scheme_specificity(k: int, p: float, sensitivity: float = 1.0, specificity: float = 1.0) -> float:
    """Probability that an uninfected person is reported negative."""
    if k == 1:
        return specificity
    others_clear = (1.0 - p) ** (k - 1)
    pool_flags = sensitivity * (1.0 - others_clear) + (1.0 - specificity) * others_clear
    return 1.0 - (1.0 - specificity) * pool_flags


def implied_prevalence(pool_positive_share: float, pool_size: float) -> float:
    """Prevalence consistent with a share of swabs in positive tubes (perfect test): ``1 - (1 - r)^(1/k)``."""
    if pool_size <= 0 or pool_positive_share <= 0:
        return 0.0
    if pool_positive_share >= 1:
        return 1.0
    return 1.0 - (1.0 - pool_positive_share) ** (1.0 / pool_size)


@dataclass(frozen=True)
class SizeRow:
    size: int
    expected_tests_per_person: float
    tests_per_1000: float
    tubes_per_1000: float  # stage 1: tubes to swab into (and to carry to the lab)
    retests_per_1000: float  # stage 2: expected single-tube retests (door-to-door sampling)
    pool_positive_probability: float
    sensitivity: float  # of the whole scheme
    specificity: float

    def as_dict(self) -> dict:
        return asdict(self)


def size_row(k: int, p: float, sensitivity: float = 1.0, specificity: float = 1.0) -> SizeRow:
    e = expected_tests_per_person(k, p, sensitivity, specificity)
    flagged = 0.0 if k == 1 else pool_positive_probability(k, p, sensitivity, specificity)
    return SizeRow(
        size=k,
        expected_tests_per_person=round(e, 6),
        tests_per_1000=round(1000 * e, 2),
        tubes_per_1000=round(1000 / k, 2),
        retests_per_1000=round(1000 * flagged, 2),  # k retests per flagged pool of k people
        pool_positive_probability=round(flagged, 6),
        sensitivity=round(scheme_sensitivity(k, sensitivity), 6),
        specificity=round(scheme_specificity(k, p, sensitivity, specificity), 6),
    )


def best_size(p: float, sizes: Iterable[int], sensitivity: float = 1.0, specificity: float = 1.0) -> int:
    """The size among ``sizes`` with the fewest expected tests per person (ties: the smaller pool)."""
    best, best_e = None, math.inf
    for k in sorted(set(sizes)):
        e = expected_tests_per_person(k, p, sensitivity, specificity)
        if e < best_e - _TIE:
            best, best_e = k, e
    if best is None:
        raise PoolingError("sizes", "no pool size to choose from")
    return best


def optimal_size(p: float, max_size: int = 20, sensitivity: float = 1.0, specificity: float = 1.0) -> int:
    """The best pool size from 1 to ``max_size``."""
    check_inputs(prevalence=p, max_size=max_size, sensitivity=sensitivity, specificity=specificity)
    return best_size(p, range(1, max_size + 1), sensitivity, specificity)


def plan(prevalence: float, *, max_size: int = 20, sensitivity: float = 1.0, specificity: float = 1.0,
         allowed: Iterable[int] | None = None) -> dict:
    """Everything ``jingkong pools plan`` prints: a row per size, the optimal size and (given the sizes a policy
    profile allows) the best allowed size and what it costs compared with the optimum."""
    check_inputs(prevalence=prevalence, max_size=max_size, sensitivity=sensitivity, specificity=specificity)
    rows = [size_row(k, prevalence, sensitivity, specificity) for k in range(1, max_size + 1)]
    k_opt = best_size(prevalence, range(1, max_size + 1), sensitivity, specificity)
    out = {
        "prevalence": prevalence,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "max_size": max_size,
        "model": "Dorfman two-stage: E/n = 1/k + S - (S + Q - 1)(1 - p)^k for k >= 2, 1 for k = 1",
        "sizes": [r.as_dict() for r in rows],
        "optimal": rows[k_opt - 1].as_dict(),
    }
    if allowed is not None:
        sizes = sorted({int(k) for k in allowed if 1 <= int(k) <= max_size})
        out["allowed"] = sizes
        if sizes:
            k_best = best_size(prevalence, sizes, sensitivity, specificity)
            best = rows[k_best - 1]
            out["best_allowed"] = {
                **best.as_dict(),
                "extra_tests_per_1000_vs_optimal": round(best.tests_per_1000 - rows[k_opt - 1].tests_per_1000, 2),
            }
        else:
            out["best_allowed"] = None
    return out


@dataclass(frozen=True)
class Recommendation:
    pool_size: int
    reason: str  # "positivity" | "too_few_tested" | "no_allowed_size"
    prevalence_used: float | None
    expected_tests_per_person: float | None


def recommend(*, tested: int, prevalence: float | None, allowed: Iterable[int], default: int,
              min_tested: int = 200, sensitivity: float = 1.0, specificity: float = 1.0) -> Recommendation:
    """The pool size to use in an area, restricted to the ``allowed`` sizes.

    With fewer than ``min_tested`` people tested recently the positivity says too little: keep ``default`` (the
    campaign's or the area's configured size). Otherwise pick the allowed size with the fewest expected tests at the
    observed prevalence (zero positives: the largest allowed size).
    """
    sizes = sorted({int(k) for k in allowed})
    if not sizes:
        return Recommendation(default, "no_allowed_size", None, None)
    if tested < min_tested or prevalence is None:
        k = default if default in sizes else max((s for s in sizes if s <= default), default=sizes[0])
        return Recommendation(k, "too_few_tested", prevalence, None)
    p = min(max(prevalence, 0.0), 1.0)
    if p == 0.0:
        p = 1e-9  # E(k) is then decreasing in k: the largest allowed size
    if p >= 1.0:
        return Recommendation(1, "positivity", prevalence, 1.0)
    k = best_size(p, sizes, sensitivity, specificity)
    return Recommendation(k, "positivity", prevalence, round(expected_tests_per_person(k, p, sensitivity, specificity), 6))
