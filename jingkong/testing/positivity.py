"""Recent positivity per area (street / community / grid) and the pool size it recommends.

Set-based: one aggregate over the samples of the last ``days`` days grouped by the area's code prefix of the person's
grid (``Sample.region_code``), one over the individual positives (``PersonTestState``), one over the regions for names.

* ``positivity`` = individual positives (persons whose positive sample was taken in the window) / persons tested;
* ``pool_positivity`` = tubes of several swabs that tested positive / such tubes with a result (negative/positive);
* the prevalence used for the recommendation is the larger of ``positivity`` and the prevalence implied by the share
  of swabs sitting in positive pools (``1 - (1 - r)^(1/k)``, k the mean number of swabs per pool): members of a
  positive pool still awaiting their single-tube retest are not yet individual positives, but the pools already say
  something is there;
* the recommended size is the best size for that prevalence among the sizes the policy in force allows
  (:func:`jingkong.testing.pooling.recommend`); with fewer than ``min_tested`` people tested the current size is kept.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Avg, Count, Q
from django.db.models.functions import Length, Substr

from jingkong.testing import pooling

LEVEL_LENGTH = {"district": 6, "street": 9, "community": 12, "grid": 15}
MAX_DAYS = 60


def area_positivity(*, prefix: str, level: str, days: int, now: dt.datetime, allowed: list[int],
                    current_size, min_tested: int = 200) -> list[dict]:
    """Rows per area at ``level`` inside ``prefix``. ``current_size(code)`` gives the pool size in force there."""
    from jingkong.geo.models import Region
    from jingkong.testing.models import Outcome, PersonTestState, Sample, TestStatus

    length = max(LEVEL_LENGTH[level], len(prefix))
    since = now - dt.timedelta(days=days)
    area = Substr("region_code", 1, length)
    pooled = Q(tube__member_count__gt=1)
    resulted = Q(tube__outcome__in=[Outcome.NEGATIVE, Outcome.POSITIVE])
    positive = Q(tube__outcome=Outcome.POSITIVE)
    samples = (Sample.objects.filter(region_code__startswith=prefix, sampled_at__gte=since, sampled_at__lte=now)
               .annotate(area=area).values("area")
               .annotate(tested=Count("person_id", distinct=True), swabs=Count("id"),
                         pending=Count("id", filter=Q(tube__outcome="")),
                         pooled_swabs=Count("id", filter=pooled & resulted),
                         pooled_swabs_positive=Count("id", filter=pooled & positive),
                         mean_pool=Avg("tube__member_count", filter=pooled & resulted),
                         pools=Count("tube_id", distinct=True, filter=pooled & resulted),
                         pools_positive=Count("tube_id", distinct=True, filter=pooled & positive))
               .order_by("area"))
    by_area = {r["area"]: r for r in samples}
    positives = dict(PersonTestState.objects.filter(region_code__startswith=prefix, status=TestStatus.POSITIVE,
                                                    positive_sampled_at__gte=since, positive_sampled_at__lte=now)
                     .annotate(area=area).values("area").annotate(n=Count("person_id")).values_list("area", "n"))
    regions = list(Region.objects.filter(code__startswith=prefix).annotate(code_length=Length("code"))
                   .filter(code_length=length).values_list("code", "name").order_by("code"))
    names = dict(regions)
    codes = [c for c, _ in regions] + sorted((set(by_area) | set(positives)) - set(names))
    rows = []
    for code in codes:
        r = by_area.get(code, {})
        tested = r.get("tested", 0)
        pos = positives.get(code, 0)
        rate = pos / tested if tested else None
        pools, pools_pos = r.get("pools", 0), r.get("pools_positive", 0)
        implied = None
        if r.get("pooled_swabs"):
            implied = pooling.implied_prevalence(r["pooled_swabs_positive"] / r["pooled_swabs"], r["mean_pool"] or 1)
        used = max(v for v in (rate, implied, None) if v is not None) if (rate is not None or implied is not None) \
            else None
        size_now = current_size(code)
        rec = pooling.recommend(tested=tested, prevalence=used, allowed=allowed, default=size_now,
                                min_tested=min_tested)
        rows.append({
            "code": code, "name": names.get(code, ""), "tested": tested, "swabs": r.get("swabs", 0),
            "pending_swabs": r.get("pending", 0), "positives": pos,
            "positivity": round(rate, 6) if rate is not None else None,
            "pools": pools, "pools_positive": pools_pos,
            "pool_positivity": round(pools_pos / pools, 6) if pools else None,
            "implied_prevalence": round(implied, 6) if implied is not None else None,
            "prevalence_used": round(used, 6) if used is not None else None,
            "current_pool_size": size_now, "recommended_pool_size": rec.pool_size, "reason": rec.reason,
            "expected_tests_per_person": rec.expected_tests_per_person,
        })
    return rows
