"""The facts health-code rules read, gathered set-based: one SQL query per source over the whole population (or over a
list of people), never an ORM query per person. Only people with at least one fact come back; everybody else has no
fact and is green without being evaluated.

Each source yields ``(person_id, fact, until)``; ``until`` is the first day the fact no longer holds (a date in the
local time zone) or ``None`` when that day is not known. The meaning and data source of every fact is documented in
docs/health-codes.md; the vocabulary itself is ``jingkong.policy.schema.HEALTH_CODE_FACTS``.

Thresholds that come from the policy profile (quarantine days, the arrival window, key-industry intervals) may differ
between regions (a street can run another profile), so the SQL fetches the candidates with the loosest bound of the
profiles in force and :class:`Policies` applies each person's own profile in Python — over the few rows that have a
fact, not over the population.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import connection

from jingkong.codes import rules as R
from jingkong.core import bulk, clock

CHUNK = 5000
Facts = dict[int, dict[str, R.Until]]


# --- the profile in force per region ---------------------------------------------------------------------------------


@dataclass
class Policy:
    """What the engine needs from one profile version."""

    profile_id: int | None
    label: str
    rules: list[R.Rule]
    close_central_days: int
    close_home_days: int
    close_home_mode: str
    counted_from: str
    secondary_mode: str
    secondary_days: int
    arrival_window_days: int | None
    industry_days: dict[str, int]
    fever_threshold: float | None


def policy_from(rules_obj, *, profile_id: int | None = None, label: str = "") -> Policy:
    """A :class:`Policy` from a validated ``PolicyRules``."""
    from jingkong.policy.schema import HEALTH_CODE_FACTS

    hc = rules_obj.health_codes
    q = rules_obj.quarantine
    fever = None
    iso = getattr(rules_obj, "isolation", None)
    if iso is not None and getattr(iso, "fever_threshold_c", None) is not None:
        fever = float(iso.fever_threshold_c)
    return Policy(
        profile_id=profile_id, label=label,
        rules=R.compile_rules(hc.rules, vocabulary=HEALTH_CODE_FACTS),
        close_central_days=q.close_contact.central_days, close_home_days=q.close_contact.home_days,
        close_home_mode=q.close_contact.home_mode, counted_from=q.close_contact.counted_from,
        secondary_mode=q.secondary_contact.mode, secondary_days=q.secondary_contact.days,
        arrival_window_days=getattr(hc, "arrival_window_days", None),
        industry_days={k: v for k, v in rules_obj.testing.key_industry_interval_days.model_dump().items() if v},
        fever_threshold=fever,
    )


class Policies:
    """The policy in force per region code at ``at`` (memoised; the district's when a region has none of its own)."""

    def __init__(self, at: dt.datetime, *, fixed: Policy | None = None):
        self.at = at
        self._fixed = fixed
        self._by_region: dict[str, Policy | None] = {}
        self._by_key: dict[tuple, Policy | None] = {}
        self._by_profile: dict[int, Policy] = {}
        self._codes: list[str] | None = None

    def _activation_codes(self) -> list[str]:
        if self._codes is None:
            from jingkong.policy.models import PolicyActivation

            self._codes = sorted(set(PolicyActivation.objects.filter(activated_at__lte=self.at)
                                     .values_list("region__code", flat=True)))
        return self._codes

    def for_region(self, region_code: str | None) -> Policy | None:
        """The policy of a region. Regions under the same activations share one lookup: the answer depends only on
        which activated regions contain it (thousands of grids, a handful of activations)."""
        if self._fixed is not None:
            return self._fixed
        code = region_code or ""
        found = self._by_region.get(code, False)
        if found is not False:
            return found
        key = (bool(code), *(c for c in self._activation_codes() if code and code.startswith(c)))
        if key not in self._by_key:
            self._by_key[key] = self._load(code)
        self._by_region[code] = self._by_key[key]
        return self._by_key[key]

    def _load(self, region_code: str) -> Policy | None:
        from jingkong.policy.schema import RulesIncomplete
        from jingkong.policy.selectors import PolicyNotActive, active_profile

        try:
            found = active_profile(region_code=region_code or None, at=self.at)
        except PolicyNotActive:
            if not region_code:
                return None
            return self.for_region("")
        pk = found.profile.pk
        if pk not in self._by_profile:
            try:
                self._by_profile[pk] = policy_from(found.rules, profile_id=pk,
                                                   label=f"{found.profile.code} v{found.profile.version}")
            except RulesIncomplete:
                return None
        return self._by_profile[pk]

    def in_force(self) -> list[Policy]:
        """Every policy a region may be under at ``at`` (for the loosest SQL bounds)."""
        if self._fixed is not None:
            return [self._fixed]
        found = [self.for_region(c) for c in ["", *self._activation_codes()]]
        out, seen = [], set()
        for p in found:
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out


# --- helpers ---------------------------------------------------------------------------------------------------------


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def _aware(value) -> dt.datetime | None:
    """A datetime from the database (SQLite returns text or naive UTC; PostgreSQL aware)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _date(value) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def local_date(value: dt.datetime) -> dt.date:
    return _aware(value).astimezone(_tz()).date()


def _bool_sql(value: bool) -> str:
    if connection.vendor == "postgresql":
        return "TRUE" if value else "FALSE"
    return "1" if value else "0"


def _chunks(ids: Sequence[int] | None) -> Iterator[tuple[str, list]]:
    """(SQL fragment, params) per chunk of ``ids``; one empty fragment for "everybody". PostgreSQL gets one array
    parameter (``= ANY(%s)``: planned once, whatever its length), SQLite an ``IN (...)`` list."""
    if ids is None:
        yield "", []
        return
    ids = list(ids)
    if connection.vendor == "postgresql":
        for i in range(0, len(ids), CHUNK * 20):
            yield "= ANY(%s)", [ids[i:i + CHUNK * 20]]
        return
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        yield f"IN ({', '.join(['%s'] * len(part))})", part


def _rows(sql: str, column: str, ids: Sequence[int] | None, params: Sequence = ()) -> Iterator[tuple]:
    """Run ``sql`` (with ``{people}`` where the person filter goes) for everybody or per chunk of ``ids``."""
    with connection.cursor() as cursor:
        for frag, chunk_params in _chunks(ids):
            people = f"AND {column} {frag}" if frag else ""
            cursor.execute(sql.format(people=people), [*params, *chunk_params])
            yield from cursor.fetchall()


@dataclass
class Gathered:
    facts: Facts = field(default_factory=dict)
    region: dict[int, str] = field(default_factory=dict)  # region code of each person with facts (if a source knew)
    per_source: dict[str, int] = field(default_factory=dict)

    def add(self, person_id: int, fact: str, until: R.Until) -> None:
        mine = self.facts.setdefault(person_id, {})
        mine[fact] = R.merge_until(mine[fact], until) if fact in mine else until


Source = Callable[["Context"], Iterable[tuple[int, str, R.Until]]]


@dataclass
class Context:
    at: dt.datetime
    today: dt.date
    people: Sequence[int] | None
    policies: Policies
    gathered: Gathered

    def policy(self, region_code: str) -> Policy | None:
        return self.policies.for_region(region_code)

    def remember_region(self, person_id: int, region_code: str) -> None:
        if region_code:
            self.gathered.region.setdefault(person_id, region_code)


# --- sources ---------------------------------------------------------------------------------------------------------


def src_cases(ctx: Context):
    """case.confirmed / case.asymptomatic: a tracing Case of the person, not closed. No known end (the case's own
    isolation order, if any, says more)."""
    sql = ("SELECT person_id, classification, region_code FROM tracing_case WHERE status <> 'closed' {people}")
    for pid, classification, region in _rows(sql, "person_id", ctx.people):
        ctx.remember_region(pid, region)
        if classification in ("confirmed", "asymptomatic"):
            yield pid, f"case.{classification}", None


def src_tests(ctx: Context):
    """test.*: PersonTestState — positive with no case yet (initial-screen positive), a pool positive controlled in
    place awaiting the single-tube retest, a tube to be resampled."""
    sql = ("SELECT s.person_id, s.status, s.controlled_in_place, s.region_code, "
           "EXISTS (SELECT 1 FROM tracing_case c WHERE c.person_id = s.person_id) "
           "FROM testing_personteststate s "
           "WHERE (s.status IN ('positive', 'pool_positive', 'resample') OR s.controlled_in_place = "
           + _bool_sql(True) + ") {people}")
    for pid, status, controlled, region, has_case in _rows(sql, "s.person_id", ctx.people):
        ctx.remember_region(pid, region)
        if status == "positive":
            if not has_case:
                yield pid, "test.initial_screen_positive", None
            continue
        if status == "pool_positive" or controlled:
            yield pid, "test.pool_positive", None
        if status == "resample":
            yield pid, "test.resample", None


_ORDER_CONTACT = {
    ("close", "central"): ("contact.close.quarantine", "contact.close.central_quarantine"),
    ("close", "home_quarantine"): ("contact.close.quarantine",),
    ("close", "home_monitoring"): ("contact.close.home_phase",),
    ("secondary", "central"): ("contact.secondary.quarantine",),
    ("secondary", "home_quarantine"): ("contact.secondary.quarantine",),
}


def src_orders(ctx: Context):
    """isolation.<mode> for every active IsolationOrder that has started, until the day after its last day (no known
    end once the last day has passed and the order is still active: release is pending). Contact facts of orders of
    close and secondary contacts (a central or home quarantine, home monitoring)."""
    sql = ("SELECT person_id, mode, tier, ends_on, region_code FROM isolation_isolationorder "
           "WHERE status = 'active' AND starts_on <= %s {people}")
    for pid, mode, tier, ends_on, region in _rows(sql, "person_id", ctx.people, [ctx.today]):
        ctx.remember_region(pid, region)
        end = _date(ends_on)
        until = end + dt.timedelta(days=1) if end and end >= ctx.today else None
        yield pid, f"isolation.{mode}", until
        for fact in _ORDER_CONTACT.get((tier, mode), ()):
            yield pid, fact, until


def src_contacts(ctx: Context):
    """contact.* and companion.space_time from tracing Contacts not closed. A close or secondary contact without any
    IsolationOrder row (tracing has not handed them to isolation yet) has their quarantine derived from the profile:
    counted from the last exposure (or the start of quarantine, as the profile says), ``central_days`` of quarantine
    then ``home_days`` of the home phase; secondary contacts ``days`` unless the profile's mode is 'none'.
    A space-time companion stays one until the contact is closed (no known end)."""
    sql = ("SELECT c.person_id, c.tier, c.last_exposure_at, c.first_identified_at, c.in_quarantine_at, c.region_code, "
           "EXISTS (SELECT 1 FROM isolation_isolationorder o WHERE o.person_id = c.person_id) "
           "FROM tracing_contact c WHERE c.status <> 'closed' {people}")
    for pid, tier, exposure, identified, in_quarantine, region, has_order in _rows(sql, "c.person_id", ctx.people):
        ctx.remember_region(pid, region)
        if tier == "companion":
            yield pid, "companion.space_time", None
            continue
        if has_order:
            continue  # the isolation orders say where the contact is (src_orders)
        policy = ctx.policy(region)
        if policy is None:
            continue
        if policy.counted_from == "last_exposure":
            base = exposure or identified
        else:
            base = in_quarantine or identified
        if base is None:
            continue
        start = local_date(base)
        if tier == "close":
            central_end = start + dt.timedelta(days=policy.close_central_days + 1)
            home_end = central_end + dt.timedelta(days=policy.close_home_days)
            if ctx.today < central_end and policy.close_central_days:
                yield pid, "contact.close.quarantine", central_end
                yield pid, "contact.close.central_quarantine", central_end
            elif ctx.today < home_end and policy.close_home_days:
                yield pid, "contact.close.home_phase", home_end
                if policy.close_home_mode == "home_isolation":
                    yield pid, "contact.close.quarantine", home_end
        elif tier == "secondary" and policy.secondary_mode != "none":
            end = start + dt.timedelta(days=policy.secondary_days + 1)
            if ctx.today < end:
                yield pid, "contact.secondary.quarantine", end


def src_zones(ctx: Context):
    """zone.<type>.resident: ZoneResident rows (approved zones in force, materialised by the zones feature). No known
    end: the zone is lifted or downgraded by a commander."""
    sql = "SELECT person_id, zone_type, region_code FROM zones_zoneresident WHERE 1 = 1 {people}"
    for pid, zone_type, region in _rows(sql, "person_id", ctx.people):
        ctx.remember_region(pid, region)
        yield pid, f"zone.{zone_type}.resident", None


def src_arrivals(ctx: Context):
    """arrival.high_risk / arrival.medium_risk: an Arrival within the profile's ``arrival_window_days`` from a division
    inside a risk area published and not withdrawn at ``at`` (prefix match on the division code); until the day after
    the window ends."""
    windows = [p.arrival_window_days for p in ctx.policies.in_force() if p.arrival_window_days]
    if not windows:
        return
    since = ctx.at - dt.timedelta(days=max(windows) + 1)
    at = bulk.db_datetime(ctx.at)
    sql = ("SELECT a.person_id, a.arrived_at, a.region_code, MIN(CASE r.level WHEN 'high' THEN 0 ELSE 1 END) "
           "FROM codes_arrival a JOIN zones_riskarea r ON a.origin_code LIKE (r.area_code || '%%') "
           "WHERE a.arrived_at >= %s AND a.arrived_at <= %s AND r.level IN ('high', 'medium') "
           "AND r.published_at <= %s AND (r.withdrawn_at IS NULL OR r.withdrawn_at > %s) {people} "
           "GROUP BY a.person_id, a.arrived_at, a.region_code")
    for pid, arrived, region, level in _rows(sql, "a.person_id", ctx.people,
                                             [bulk.db_datetime(since), at, at, at]):
        ctx.remember_region(pid, region)
        policy = ctx.policy(region)
        if policy is None or not policy.arrival_window_days:
            continue
        until = local_date(arrived) + dt.timedelta(days=policy.arrival_window_days + 1)
        if ctx.today < until:
            yield pid, "arrival.high_risk" if level == 0 else "arrival.medium_risk", until


def src_fever(ctx: Context):
    """fever.referred: a FeverReferral still open (referred or visited, not cleared or closed). No known end."""
    sql = ("SELECT person_id, region_code FROM codes_feverreferral "
           "WHERE status <> 'cleared' AND closed_at IS NULL {people}")
    for pid, region in _rows(sql, "person_id", ctx.people):
        ctx.remember_region(pid, region)
        yield pid, "fever.referred", None


def src_symptoms(ctx: Context):
    """person.symptoms_reported: the latest symptom check of an active isolation order lists symptoms (or a
    temperature at or above the isolation section's fever threshold). Until the order's end."""
    empty = "'[]'::jsonb" if connection.vendor == "postgresql" else "'[]'"
    sql = ("SELECT o.person_id, o.region_code, o.ends_on, k.symptoms <> " + empty + ", k.temperature "
           "FROM isolation_symptomcheck k JOIN isolation_isolationorder o ON o.id = k.order_id "
           "WHERE o.status = 'active' AND k.id = (SELECT k2.id FROM isolation_symptomcheck k2 "
           "WHERE k2.order_id = o.id ORDER BY k2.checked_at DESC, k2.id DESC LIMIT 1) {people}")
    for pid, region, ends_on, has_symptoms, temperature in _rows(sql, "o.person_id", ctx.people):
        ctx.remember_region(pid, region)
        policy = ctx.policy(region)
        feverish = (temperature is not None and policy is not None and policy.fever_threshold is not None
                    and float(temperature) >= policy.fever_threshold)
        if has_symptoms or feverish:
            end = _date(ends_on)
            yield pid, "person.symptoms_reported", (end + dt.timedelta(days=1) if end and end >= ctx.today else None)


def src_key_industry(ctx: Context):
    """key_industry.overdue: a key-industry worker (Person.industry) never sampled or last sampled longer ago than
    the profile's interval for the industry (jingkong/testing/industry.py's definition). No known end: the next
    sample ends it."""
    policies = ctx.policies.in_force()
    industries = sorted({k for p in policies for k in p.industry_days})
    if not industries:
        return
    shortest = min(d for p in policies for d in p.industry_days.values())
    bound = bulk.db_datetime(ctx.at - dt.timedelta(days=shortest))
    marks = ", ".join(["%s"] * len(industries))
    sql = ("SELECT p.id, p.industry, g.code, (SELECT MAX(s.sampled_at) FROM testing_sample s WHERE s.person_id = p.id) "
           "FROM people_person p LEFT JOIN geo_region g ON g.id = p.grid_id "
           f"WHERE p.industry IN ({marks}) AND NOT EXISTS (SELECT 1 FROM testing_sample s2 "
           "WHERE s2.person_id = p.id AND s2.sampled_at >= %s) {people}")
    for pid, industry, region, last in _rows(sql, "p.id", ctx.people, [*industries, bound]):
        ctx.remember_region(pid, region or "")
        policy = ctx.policy(region or "")
        days = policy.industry_days.get(industry) if policy else None
        if not days:
            continue
        last = _aware(last)
        if last is None or last < ctx.at - dt.timedelta(days=days):
            yield pid, "key_industry.overdue", None


SOURCES: dict[str, Source] = {
    "cases": src_cases,
    "tests": src_tests,
    "orders": src_orders,
    "contacts": src_contacts,
    "zones": src_zones,
    "arrivals": src_arrivals,
    "fever": src_fever,
    "symptoms": src_symptoms,
    "key_industry": src_key_industry,
}


def gather(*, at: dt.datetime, people: Sequence[int] | None = None, policies: Policies | None = None,
           progress: Callable[[str], None] | None = None) -> Gathered:
    """Every fact of everybody (``people=None``) or of the given people, by source."""
    policies = policies or Policies(at)
    out = Gathered()
    ctx = Context(at=at, today=at.astimezone(_tz()).date(), people=people, policies=policies, gathered=out)
    for name, source in SOURCES.items():
        n = 0
        for pid, fact, until in source(ctx):
            out.add(pid, fact, until)
            n += 1
        out.per_source[name] = n
        if progress:
            progress(name)
    return out
