"""A small crafted round for coverage tests: persons in the conftest grids, tubes with known outcomes, retest tasks.

``make_round(regions)`` builds (district campaign ``C``, every figure known by hand):

=====  ======  ==============================================================  ==================
who    grid    swabs in C                                                       state
=====  ======  ==============================================================  ==================
a1_1   a1      T1 (negative pool) and T2 (pending): sampled twice               negative
a1_2   a1      T1                                                               negative
a1_3   a1      T2 (pending)                                                     pending
a1_4   a1      T2                                                               pending
a1_5   a1      T3 (positive pool), retest task resolved negative                negative
a1_6   a1      T3, retest task resolved positive                                positive
a1_7   a1      T4 (invalid), resampling task open                               resample
a1_8   a1      —  (limited mobility)                                            not sampled
a2_1   a2      T1                                                               negative
a2_2   a2      T3, retest task open                                             pool_positive
a2_3   a2      T4 (invalid), resample swab taken (task sampled, tube pending)   pending
a2_4   a2      —                                                                not sampled
a2_p   a2      T2 — a provisional person created at the scan                    pending
b1_1   b1      T2                                                               pending
b1_2   b1      T6 (single tube, positive)                                       positive
b1_3   b1      —                                                                not sampled
nogrid —       T2 (provisional, no residence)                                   not in any target
visitor other  T1 (lives in another district)                                   not in C's target
=====  ======  ==============================================================  ==================

Per grid: a1 8 target, 7 sampled (3 negative, 2 pending, 1 positive, 1 resample); a2 5 target, 4 sampled (1 negative,
1 pool_positive, 2 pending); b1 3 target, 2 sampled (1 pending, 1 positive); b2 nobody.
"""

from __future__ import annotations

import datetime as dt
import itertools

from jingkong.conftest import T0, make_region

_serial = itertools.count(1)


def person(grid, key: str, *, building=None, household=None, unit: str = "", room: str = "", vulnerable: int = 0,
           industry: str = "", workplace=None, source: str = "import", phone: str = "13912345678"):
    from jingkong.people.models import Person

    n = next(_serial)
    return Person.objects.create(
        id_hash=f"cov{n:08d}{key}".ljust(32, "0")[:64], id_masked=f"330206********{n:04d}", name=f"居民{key}", sex="F",
        birth_date=dt.date(1950 + n % 50, 1, 1), phone=phone, grid=grid, building=building, household=household,
        unit=unit, room=room, vulnerable=vulnerable, industry=industry, workplace=workplace, source=source,
        created_at=T0, updated_at=T0)


def campaign(region, code: str = "", *, key_industry: str = ""):
    from jingkong.testing.models import Campaign

    return Campaign.objects.create(code=code or f"COV-{next(_serial)}", name="全员核酸第一轮", region=region,
                                   region_code=region.code, key_industry=key_industry, starts_at=T0,
                                   deadline=T0 + dt.timedelta(hours=12), status="running", created_at=T0, updated_at=T0)


def tube(c, members, *, outcome: str = "", capacity: int = 10, kind: str = "routine"):
    """A tube of campaign ``c`` holding ``members`` (persons), with ``outcome`` ('' = no result yet)."""
    from jingkong.testing.models import Sample, Tube

    n = next(_serial)
    t = Tube.objects.create(barcode=f"COVT{n:08d}", campaign=c, region_code=c.region_code, kind=kind,
                            capacity=capacity, member_count=len(members), status="resulted" if outcome else "sealed",
                            opened_at=T0, outcome=outcome, resulted_at=T0 if outcome else None)
    for i, p in enumerate(members, start=1):
        Sample.objects.create(client_scan_id=f"cov-{n}-{p.pk}", campaign=c, tube=t, person=p,
                              region_code=p.grid.code if p.grid_id else "", position=i,
                              sampled_at=T0 + dt.timedelta(minutes=n), recorded_at=T0 + dt.timedelta(minutes=n))
    return t


def retest(c, p, source_tube, status: str, reason: str = "pool_positive"):
    from jingkong.testing.models import RetestTask

    return RetestTask.objects.create(person=p, campaign=c, source_tube=source_tube, reason=reason, status=status,
                                     region_code=p.grid.code, created_at=T0)


def make_round(regions) -> dict:
    from jingkong.geo.models import Building, Venue
    from jingkong.people.models import Household, Vulnerable

    g = regions
    out: dict = {"regions": regions}
    b_a1 = Building.objects.create(code="COV-B-A1-1", grid=g["grid_a1"], address="新碶一网格1号楼", lon=121.805,
                                   lat=29.905)
    b_a1_2 = Building.objects.create(code="COV-B-A1-2", grid=g["grid_a1"], address="新碶一网格2号楼", lon=121.806,
                                     lat=29.905)
    h1 = Household.objects.create(code="COV-H-1", building=b_a1, grid=g["grid_a1"], unit="1", room="101")
    h2 = Household.objects.create(code="COV-H-2", building=b_a1, grid=g["grid_a1"], unit="2", room="1201")
    h3 = Household.objects.create(code="COV-H-3", building=b_a1, grid=g["grid_a1"], unit="1", room="201")
    out["buildings"] = {"a1": b_a1, "a1_2": b_a1_2}
    p = out["persons"] = {}
    p["a1_1"] = person(g["grid_a1"], "a1_1", building=b_a1, household=h1)
    p["a1_2"] = person(g["grid_a1"], "a1_2", building=b_a1, household=h1)
    p["a1_3"] = person(g["grid_a1"], "a1_3", building=b_a1, household=h3)
    p["a1_4"] = person(g["grid_a1"], "a1_4", building=b_a1_2, unit="1", room="2")
    p["a1_5"] = person(g["grid_a1"], "a1_5", building=b_a1_2, unit="1", room="3")
    p["a1_6"] = person(g["grid_a1"], "a1_6", building=b_a1_2, unit="1", room="4")
    p["a1_7"] = person(g["grid_a1"], "a1_7", building=b_a1, household=h2, vulnerable=int(Vulnerable.ELDERLY))
    p["a1_8"] = person(g["grid_a1"], "a1_8", building=b_a1, household=h2,
                       vulnerable=int(Vulnerable.ELDERLY | Vulnerable.LIMITED_MOBILITY))
    for key in ("a2_1", "a2_2", "a2_3", "a2_4"):
        p[key] = person(g["grid_a2"], key)
    p["a2_p"] = person(g["grid_a2"], "a2_p", source="provisional")
    for key in ("b1_1", "b1_2", "b1_3"):
        p[key] = person(g["grid_b1"], key)
    p["nogrid"] = person(None, "nogrid", source="provisional")
    other = make_region("330211", "镇海区", "district")
    other_grid = make_region("330211001001001", "镇海网格", "grid", other)
    p["visitor"] = person(other_grid, "visitor")
    out["venue_a1"] = Venue.objects.create(code="COV-V-A1", name="码头", type="port_terminal", lon=121.805,
                                           lat=29.905, grid=g["grid_a1"])

    c = out["campaign"] = campaign(g["district"], "COV-R1")
    t = out["tubes"] = {}
    t["T1"] = tube(c, [p["a1_1"], p["a1_2"], p["a2_1"], p["visitor"]], outcome="negative")
    t["T2"] = tube(c, [p["a1_1"], p["a1_3"], p["a1_4"], p["a2_p"], p["b1_1"], p["nogrid"]])
    t["T3"] = tube(c, [p["a1_5"], p["a1_6"], p["a2_2"]], outcome="positive")
    retest(c, p["a1_5"], t["T3"], "negative")
    retest(c, p["a1_6"], t["T3"], "positive")
    retest(c, p["a2_2"], t["T3"], "open")
    t["T4"] = tube(c, [p["a1_7"], p["a2_3"]], outcome="invalid")
    retest(c, p["a1_7"], t["T4"], "open", reason="invalid_tube")
    retest(c, p["a2_3"], t["T4"], "sampled", reason="invalid_tube")
    t["T5"] = tube(c, [p["a2_3"]], capacity=1, kind="resample")
    t["T6"] = tube(c, [p["b1_2"]], outcome="positive", capacity=1)
    return out


EXPECTED = {
    "330206002001001": {"target": 8, "sampled": 7, "not_sampled": 1, "negative": 3, "pending": 2, "positive": 1,
                        "resample": 1, "pool_positive": 0},
    "330206002001002": {"target": 5, "sampled": 4, "not_sampled": 1, "negative": 1, "pending": 2, "positive": 0,
                        "resample": 0, "pool_positive": 1},
    "330206004001001": {"target": 3, "sampled": 2, "not_sampled": 1, "negative": 0, "pending": 1, "positive": 1,
                        "resample": 0, "pool_positive": 0},
    "330206004001002": {"target": 0, "sampled": 0, "not_sampled": 0, "negative": 0, "pending": 0, "positive": 0,
                        "resample": 0, "pool_positive": 0},
}
