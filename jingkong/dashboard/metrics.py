"""The metric vocabulary of the dashboard's figures: the contract between the families that write figures
(``families/``) and the selectors that read them.

``agg`` says how a region's figure is made from the stored rows:

* ``sum`` — counts stored at the deepest region the record is located to (normally a grid); a region's value is the
  sum over the codes under it, so every count equals the sum of its drill-down.
* ``min`` / ``max`` — e.g. the oldest waiting time (an epoch second), the latest date; stored per deepest region.
* ``level`` — non-additive values (quantiles) computed for every region at every level; read at the region itself.

``day``: whether rows carry a reporting day (Asia/Shanghai). ``key``: what the key column holds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    family: str
    agg: str = "sum"  # sum | min | max | level
    day: bool = False
    key: str = ""  # what the key holds ("" = always empty)
    doc: str = ""


_M = Metric
METRICS: dict[str, Metric] = {m.name: m for m in [
    # ---- situation: cases (family "cases") --------------------------------------------------------------------
    _M("cases.new", "cases", day=True, key="classification:found",
       doc="cases by report day (the day the case was created); key 'confirmed|asymptomatic:quarantine|control|"
           "community' — found in centralised/home quarantine (an isolation order or a quarantined contact at the "
           "time), inside a lockdown/control zone, or in the community (社会面)"),
    _M("cases.report", "cases", day=True, key="local|imported", doc="epidemic curve by report date"),
    _M("cases.onset", "cases", day=True, key="local|imported",
       doc="epidemic curve by onset date (cases without onset: the first positive sample's day)"),
    _M("cases.total", "cases", doc="all cases of the wave (not discarded)"),
    # ---- tracing: contacts (family "contacts") ----------------------------------------------------------------
    _M("contacts.identified", "contacts", day=True, key="close|secondary", doc="by the day identified"),
    _M("contacts.located", "contacts", day=True, key="close|secondary", doc="by the day located (reached)"),
    _M("contacts.transferred", "contacts", day=True, key="close|secondary",
       doc="by the day picked up by a transfer vehicle"),
    _M("contacts.isolated", "contacts", day=True, key="close|secondary",
       doc="by the day isolation started (arrived / home order)"),
    # ---- zones (family "zones") -------------------------------------------------------------------------------
    _M("zones.count", "zones", key="lockdown|control|prevention", doc="active zones by type, at the zone's region"),
    _M("zones.population", "zones", key="lockdown|control|prevention",
       doc="residents of active zones by type, at each resident's grid"),
    # ---- five-stage clock (family "clock") --------------------------------------------------------------------
    _M("clock.n", "clock", agg="level", key="stage", doc="items that completed the stage"),
    _M("clock.p50_h", "clock", agg="level", key="stage", doc="median hours"),
    _M("clock.p90_h", "clock", agg="level", key="stage", doc="90th percentile hours"),
    _M("clock.on_target", "clock", agg="level", key="stage", doc="share of completed items within the target"),
    _M("clock.backlog", "clock", agg="level", key="stage", doc="items waiting in the stage now"),
    _M("clock.overdue", "clock", agg="level", key="stage", doc="waiting items already past the target"),
    _M("clock.ratio", "clock", agg="level", key="stage",
       doc="the clock's load ratio of the day (p90 of ended durations and open ages ÷ target): the highest names the "
           "slowest stage, as on the clock page (ties: the earlier stage)"),
    _M("clock.target_h", "clock", agg="level", key="stage", doc="the stage's target in hours (the district's profile)"),
    # ---- testing (family "testing") ---------------------------------------------------------------------------
    _M("round.target", "testing", key="campaign id", doc="persons the round must test, at their grid"),
    _M("round.sampled", "testing", key="campaign id", doc="persons sampled in the round, at their grid"),
    _M("round.reported", "testing", key="campaign id", doc="sampled persons whose result is in"),
    _M("round.positive", "testing", key="campaign id", doc="persons in positive pools or positive single tubes"),
    _M("retest.persons_waiting", "testing", doc="members of positive pools awaiting their single-tube retest"),
    _M("retest.pools_waiting", "testing", doc="positive pools with a retest still open, at the pool's region"),
    # ---- transfer and isolation (family "isolation") ----------------------------------------------------------
    _M("transfer.waiting", "isolation", doc="people grouped for transfer, not yet picked up"),
    _M("transfer.en_route", "isolation", doc="people picked up, not yet arrived"),
    _M("transfer.oldest_wait", "isolation", agg="min", doc="epoch seconds since the oldest waiting person was grouped"),
    _M("facilities.rooms", "isolation", key="facility kind", doc="usable rooms, at the facility's region"),
    _M("facilities.occupied", "isolation", key="facility kind"),
    _M("facilities.free", "isolation", key="facility kind"),
    _M("facilities.reserve_days", "isolation", agg="min",
       doc="days until the free beds of a quarantine hotel/shelter run out at its current intake: the smallest under "
           "a region is the FIRST facility to run out, not the region's reserve (see the two metrics below)"),
    _M("facilities.reserve_free_beds", "isolation",
       doc="free beds of quarantine hotels and shelters (the reserve; no designated hospitals), at the facility's "
           "region"),
    _M("facilities.reserve_net_per_day", "isolation",
       doc="their net intake per day (arrivals − departures, averaged over the profile's window). A region's reserve "
           "days = SUM(free beds) ÷ SUM(net) when the net is > 0, else none (not running out), rounded to 0.1 — the "
           "reserve board's district forecast (isolation.reserve.district_capacity)"),
    _M("isolation.active", "isolation", key="stage", doc="people under an active isolation order, at their grid"),
    # ---- command: directives, problems, services (family "command") -------------------------------------------
    _M("tasks.total", "command", doc="tasks of open directives, at the task's grid"),
    _M("tasks.done", "command", doc="of which reported done"),
    _M("tasks.overdue", "command"),
    _M("problems.open", "command", key="type"),
    _M("problems.overdue", "command", key="type"),
    _M("services.open", "command", key="category"),
    _M("services.overdue", "command", key="category"),
    # ---- checkpoints (family "checkpoints") -------------------------------------------------------------------
    _M("crossings.total", "checkpoints", day=True, doc="crossings logged, at the checkpoint's region"),
    _M("crossings.denied", "checkpoints", day=True),
    _M("crossings.referred", "checkpoints", day=True),
]}


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown dashboard metric {name!r}; add it to jingkong.dashboard.metrics.METRICS") from None


def of_family(family: str) -> list[Metric]:
    return [m for m in METRICS.values() if m.family == family]
