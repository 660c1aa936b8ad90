"""Sampling, the hot path (采样扫码): a person and a tube barcode scanned at a site become a :class:`Sample`.

Rules (docs/testing-formats.md repeats them for device and file integrators):

* **Tubes** are created by their first scan. Capacity: the scan's ``pool_size``, else the pool size of the most specific
  :class:`CampaignArea` containing the site's region (a door-to-door team: the person's grid), else the campaign's
  ``pool_size``, else — no campaign — the policy profile's default for the least severe zone type in force. Retest and
  resample tubes always hold one person. A tube is sealed automatically when full, or early by hand
  (:func:`tube_seal`). A scan into a full or sealed tube, a tube of another kind, another site or another campaign is
  rejected with the field and the reason.
* **Campaign**: the one named by the scan (it must be running, or closed with the sampling time before its deadline,
  and contain the site); else the temporary site's own campaign; else the running campaign whose region contains the
  site's region, the most specific one (key-group rounds only by name or through their own site); else none
  (routine and key-industry testing outside a round is still recorded). A tube keeps the campaign it was opened in.
* **Idempotency**: ``client_scan_id`` (made by the device; derived from tube and person when absent) is unique: a retry
  returns the original result (``replayed``) and writes nothing. The same person into the same tube again is a
  ``duplicate`` (no new record). The same person in two tubes of a round is recorded twice (coverage counts persons).
* **Unknown persons** with a valid ID number get a provisional record (source ``provisional``, needs review, in the
  site's grid when the site stands in a grid), audited and evented; an invalid ID number rejects that scan only.
* **Retest / resample** scans go into single tubes and claim the person's open :class:`RetestTask` (status
  ``sampled``, ``sample``, and ``Sample.retest_of``) in the same transaction.
* **Authority**: the site must lie inside the caller's region scope; a sampler must be assigned to the site.

How it is written (measured in benchmarks/bench_scans.py): the reads that decide nothing under concurrency (site,
person) run before the transaction; then one short transaction per request with raw SQL. A single scan increments its
tube with one conditional ``UPDATE … WHERE status = 'open' AND member_count < capacity RETURNING`` (a new tube: one
``INSERT … ON CONFLICT DO NOTHING``) and inserts the sample with ``ON CONFLICT DO NOTHING RETURNING``; a conflict (a
retry or a duplicate, both rare) undoes the increment and reports the original record. A batch locks its tubes
(PostgreSQL ``FOR UPDATE`` in barcode order; SQLite's IMMEDIATE transactions hold the write lock), looks up existing
samples once, allocates positions in Python and writes samples (PostgreSQL ``unnest`` arrays, SQLite one multi-row
``INSERT``) and tube counts set-based. Two devices filling one tube never overfill it (the row lock, and the check
constraint ``testing_tube_not_overfilled`` behind it). One summary event per request and site.
``PersonTestState`` is not touched here (results write it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.access.roles import Role
from jingkong.core import clock
from jingkong.core.events import emit, emit_many
from jingkong.core.exceptions import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from jingkong.people import idnumber, tokens
from jingkong.people.models import Source
from jingkong.testing.models import CampaignStatus, RetestReason, TubeKind, TubeStatus

MAX_BATCH = 500
MAX_BARCODE = 40
MAX_SCAN_ID = 64
MAX_NAME = 64
MAX_DEVICE = 64
FUTURE_TOLERANCE = dt.timedelta(minutes=10)  # device clocks drift; a scan further in the future is refused
PROVISIONAL_NAME = "待核实"  # placeholder name of a provisional person scanned without a name
KINDS = {k.value for k in TubeKind}
SINGLE_KINDS = {TubeKind.RETEST.value, TubeKind.RESAMPLE.value}
# A retest tube claims a pool-positive follow-up first, a resample tube an invalid-tube follow-up first.
TASK_PREFERENCE = {TubeKind.RETEST.value: RetestReason.POOL_POSITIVE.value,
                   TubeKind.RESAMPLE.value: RetestReason.INVALID_TUBE.value}
EVENT_SCANS = "testing.scans_recorded"
EVENT_SEALED = "testing.tube_sealed"
RECORDED, DUPLICATE, REJECTED = "recorded", "duplicate", "rejected"
_RETRIES = 4
_BARCODE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class ScanRejected(Exception):
    """One scan cannot be recorded: ``field`` and ``reason`` tell the device why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class _Retry(Exception):
    """A concurrent writer got in between (PostgreSQL): run the request's transaction again."""


@dataclass
class Scan:
    """A validated scan (see :func:`parse_scan`)."""

    index: int
    tube: str
    kind: str
    sampled_at: dt.datetime
    site_code: str
    id_number: str = ""  # normalised 18 characters
    id_hash: str = ""
    token_person: int | None = None  # the person id inside a person token
    client_scan_id: str = ""  # empty: derived from tube and person once the person is known
    name: str = ""
    pool_size: int | None = None
    campaign_code: str = ""
    device: str = ""
    given_id: bool = True  # False: the device sent no scan id (a repeat is then a duplicate, not a retry)

    @property
    def derived_id(self) -> bool:
        return not self.given_id


@dataclass
class ScanResult:
    index: int
    status: str
    tube: str
    client_scan_id: str = ""
    field: str = ""
    reason: str = ""
    provisional: bool = False
    replayed: bool = False
    sample_id: int | None = None
    position: int | None = None
    retest_task: int | None = None


@dataclass
class TubeState:
    barcode: str
    kind: str
    capacity: int
    member_count: int
    status: str

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.member_count)


@dataclass
class BatchOutcome:
    results: list[ScanResult]
    tubes: list[TubeState]
    counts: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"counts": self.counts, "results": [dict(vars(r)) for r in self.results],
                "tubes": [dict(vars(t)) for t in self.tubes]}


@dataclass
class Site:
    id: int
    code: str
    region_code: str
    region_id: int
    region_level: str
    kind: str
    active: bool
    campaign_id: int | None
    assigned: bool


@dataclass
class CampaignInfo:
    id: int
    code: str
    region_code: str
    pool_size: int
    status: str
    starts_at: dt.datetime
    deadline: dt.datetime
    key_industry: str
    areas: list[tuple[str, int]] = field(default_factory=list)  # (region code, pool size)

    def accepts(self, at: dt.datetime) -> bool:
        """Running, or closed with the sampling time inside the round (a device flushing its queue late)."""
        if self.status == CampaignStatus.RUNNING:
            return True
        return self.status == CampaignStatus.CLOSED and self.starts_at <= at <= self.deadline

    def pool_size_for(self, region_code: str) -> int:
        """The pool size of the most specific area containing ``region_code``, else the campaign's."""
        best = None
        for code, size in self.areas:
            if region_code.startswith(code) and (best is None or len(code) > len(best[0])):
                best = (code, size)
        return best[1] if best else self.pool_size


# --- pure rules ----------------------------------------------------------------------------------------------------


def choose_campaign(candidates: Iterable[CampaignInfo], region_code: str, at: dt.datetime) -> CampaignInfo | None:
    """The round a scan at ``region_code`` belongs to when the scan names none: among the rounds accepting scans at
    ``at`` whose region contains ``region_code`` and that sample the whole population (key-group rounds are chosen
    only by name or through their own site), the most specific; then running before closed, then the latest start."""
    best, best_key = None, None
    for c in candidates:
        if c.key_industry or not region_code.startswith(c.region_code) or not c.accepts(at):
            continue
        key = (len(c.region_code), c.status == CampaignStatus.RUNNING, c.starts_at, c.id)
        if best_key is None or key > best_key:
            best, best_key = c, key
    return best


def explicit_campaign_problem(c: CampaignInfo | None, code: str, region_code: str, at: dt.datetime) -> str:
    """Why a scan may not name campaign ``code`` ('' when it may)."""
    if c is None:
        return _("unknown campaign %(code)s") % {"code": code}
    if not region_code.startswith(c.region_code):
        return _("the site lies outside the region of campaign %(code)s") % {"code": code}
    if c.status == CampaignStatus.PLANNED:
        return _("campaign %(code)s has not started") % {"code": code}
    if not c.accepts(at):
        return _("campaign %(code)s is closed (the sampling time is after its deadline)") % {"code": code}
    return ""


def derive_scan_id(barcode: str, person_id: int) -> str:
    """A deterministic scan id for a scan without one: the same tube and person always give the same id."""
    return "d:" + hashlib.blake2b(f"{barcode}\0{person_id}".encode(), digest_size=16).hexdigest()


def tube_problem(tube: TubeState, *, kind: str, site_ok: bool, campaign_ok: bool) -> tuple[str, str]:
    """(field, reason) why a scan cannot go into an existing tube, or ('', '')."""
    if tube.kind != kind:
        return "tube_kind", _("tube %(barcode)s is a %(kind)s tube, not %(wanted)s") % {
            "barcode": tube.barcode, "kind": tube.kind, "wanted": kind}
    if not site_ok:
        return "tube", _("tube %(barcode)s was opened at another site") % {"barcode": tube.barcode}
    if not campaign_ok:
        return "campaign", _("tube %(barcode)s belongs to another campaign") % {"barcode": tube.barcode}
    if tube.status != TubeStatus.OPEN:
        return "tube", _("tube %(barcode)s is %(status)s") % {"barcode": tube.barcode,
                                                          "status": TubeStatus(tube.status).label}
    if tube.member_count >= tube.capacity:
        return "tube", _("tube %(barcode)s is full (%(count)s of %(capacity)s)") % {
            "barcode": tube.barcode, "count": tube.member_count, "capacity": tube.capacity}
    return "", ""


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ScanRejected(key, _("must be text"))
    value = str(value).strip()
    if "\x00" in value:  # PostgreSQL text cannot hold it; no code or name has one
        raise ScanRejected(key, _("contains a NUL character"))
    return value


EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # a sampling time before this is a device or file error


def parse_time(value, *, now: dt.datetime, field_name: str = "sampled_at") -> dt.datetime:
    """An ISO 8601 date-time (naive: the platform's local time) as aware UTC; empty means ``now``."""
    if value is None or value == "":
        return now
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise ScanRejected(field_name, _("not a date-time (use ISO 8601, e.g. 2022-01-20T08:30:00+08:00)"))
    else:
        raise ScanRejected(field_name, _("not a date-time (use ISO 8601, e.g. 2022-01-20T08:30:00+08:00)"))
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
        moment = moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):  # e.g. year 1 or 9999 shifted out of range by the offset
        raise ScanRejected(field_name, _("not a possible sampling time")) from None
    if moment < EARLIEST:
        raise ScanRejected(field_name, _("not a possible sampling time"))
    if moment > now + FUTURE_TOLERANCE:
        raise ScanRejected(field_name, _("lies in the future (check the device clock)"))
    return moment


def parse_scan(raw: Mapping, *, index: int = 0, now: dt.datetime, today: dt.date | None = None,
               site: str = "", device: str = "", campaign: str = "", hash_id: bool = True) -> Scan:
    """Validate one scan as sent by a device (a mapping); raises :class:`ScanRejected` naming the field.

    ``site``/``device``/``campaign``: the batch's defaults for items that do not name their own. ``hash_id=False``
    leaves ``id_hash`` empty for the caller to hash many numbers at once (:func:`idnumber.id_hash_many`).
    """
    barcode = _text(raw, "tube")
    if not barcode:
        raise ScanRejected("tube", _("the tube barcode is missing"))
    if len(barcode) > MAX_BARCODE:
        raise ScanRejected("tube", _("a tube barcode has at most %(n)s characters") % {"n": MAX_BARCODE})
    if not set(barcode) <= _BARCODE_CHARS:
        raise ScanRejected("tube", _("a tube barcode is letters, digits and - _ ."))
    scan_id = _text(raw, "client_scan_id")
    if len(scan_id) > MAX_SCAN_ID:
        raise ScanRejected("client_scan_id", _("at most %(n)s characters") % {"n": MAX_SCAN_ID})
    kind = _text(raw, "tube_kind").lower() or TubeKind.ROUTINE.value
    if kind not in KINDS:
        raise ScanRejected("tube_kind", _("unknown tube kind %(kind)s (use %(kinds)s)") % {
            "kind": kind, "kinds": ", ".join(sorted(KINDS))})
    pool = raw.get("pool_size")
    pool_size = None
    if pool not in (None, ""):
        try:
            pool_size = int(str(pool).strip()) if not isinstance(pool, bool) else None
        except ValueError:
            pool_size = None
        if pool_size is None or str(pool).strip() != str(pool_size) or not 1 <= pool_size <= 20:
            raise ScanRejected("pool_size", _("a pool size is a whole number from 1 to 20"))
    sampled_at = parse_time(raw.get("sampled_at"), now=now)
    site_code = _text(raw, "site") or site
    if not site_code:
        raise ScanRejected("site", _("the sampling site is missing"))
    name = _text(raw, "name")
    if len(name) > MAX_NAME:
        raise ScanRejected("name", _("at most %(n)s characters") % {"n": MAX_NAME})
    device_name = (_text(raw, "device") or device)[:MAX_DEVICE]
    scan = Scan(index=index, tube=barcode, kind=kind, sampled_at=sampled_at, site_code=site_code,
                client_scan_id=scan_id, given_id=bool(scan_id), name=name, pool_size=pool_size,
                campaign_code=_text(raw, "campaign") or campaign, device=device_name)
    number, token = _text(raw, "id_number"), _text(raw, "person_token")
    if number and token:
        raise ScanRejected("person_token", _("give either an ID number or a person code, not both"))
    if tokens.looks_like_token(number):  # a scanner that puts whatever it read into id_number
        number, token = "", number
    if token:
        try:
            scan.token_person = tokens.resolve_token(token)
        except tokens.InvalidToken as exc:
            raise ScanRejected("person_token", exc.reason) from None
    elif number:
        try:
            scan.id_number = idnumber.validate(number, today=today or clock.today())
        except idnumber.IdNumberError as exc:
            raise ScanRejected("id_number", exc.reason) from None
        if hash_id:
            scan.id_hash = idnumber.id_hash(scan.id_number)
    else:
        raise ScanRejected("id_number", _("the person is missing (give id_number or person_token)"))
    return scan


# --- database helpers ----------------------------------------------------------------------------------------------


@functools.cache
def _vendor() -> str:
    """The database in use (fixed per process; ``connection.vendor`` goes through a thread-local proxy each time)."""
    return connections[DEFAULT_DB_ALIAS].vendor


def _pg() -> bool:
    return _vendor() == "postgresql"


def _db_time(value: dt.datetime | None):
    """An aware datetime as the database stores it (SQLite: naive-UTC text, as Django writes it; PostgreSQL: as is).
    Django's own adapter costs ~20 µs a call on SQLite; the hot path calls this several times per scan."""
    if value is None or _vendor() != "sqlite":
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")


def _aware(value) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _ph(cursor) -> str:
    """The placeholder for an array parameter: binary (``%b``) on the hot path's psycopg cursor — half the client
    CPU of the text form — and ``%s`` on Django's cursors (client-side binding has no binary parameters)."""
    kind = type(cursor)
    return "%b" if kind.__name__ == "Cursor" and kind.__module__.startswith("psycopg") else "%s"


def _in(column: str, values: Sequence, cursor=None) -> tuple[str, list]:
    """``column IN (…)`` for either database (PostgreSQL: one array parameter, so the statement text is constant)."""
    if not values:
        return "1 = 0", []
    if _pg():
        return f"{column} = ANY({_ph(cursor)})", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


_SITE_SQL = """
SELECT s.id, s.code, s.region_code, s.region_id, r.level, s.kind, s.active, s.campaign_id,
       EXISTS(SELECT 1 FROM testing_samplingsite_samplers m WHERE m.samplingsite_id = s.id AND m.user_id = %s)
FROM testing_samplingsite s JOIN geo_region r ON r.id = s.region_id
"""


def _sites(cursor, codes: Sequence[str], user_id) -> dict[str, Site]:
    where, params = _in("s.code", codes, cursor)
    cursor.execute(_SITE_SQL + " WHERE " + where, [user_id or 0, *params])
    return {row[1]: Site(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], bool(row[8]))
            for row in cursor.fetchall()}


def site_problem(site: Site | None, code: str, *, actor, scope: Scope) -> ApplicationError | None:
    """The error answering a scan at site ``code`` (None: the caller may scan there)."""
    if site is None or not scope.contains(site.region_code):
        return NotFound(_("sampling site %(code)s not found") % {"code": code}, extra={"field": "site"})
    if getattr(actor, "role", None) == Role.SAMPLER and not site.assigned:
        return PermissionDenied(_("you are not assigned to sampling site %(code)s") % {"code": code},
                                extra={"field": "site"})
    if not site.active:
        return ValidationFailed(_("sampling site %(code)s is closed (inactive)") % {"code": code},
                                extra={"field": "site"})
    return None


_CAMPAIGN_SQL = """
SELECT c.id, c.code, c.region_code, c.pool_size, c.status, c.starts_at, c.deadline, c.key_industry,
       a.region_code, a.pool_size
FROM testing_campaign c LEFT JOIN testing_campaignarea a ON a.campaign_id = c.id
"""


def load_campaigns(cursor, *, codes: Sequence[str] = (), ids: Sequence[int] = (), accepting_since=None
                   ) -> list[CampaignInfo]:
    """Campaigns (with their areas) named by code or id, plus — with ``accepting_since`` — every campaign that may
    accept scans sampled at or after that time (running, or closed with a later deadline)."""
    terms, params = [], []
    for column, values in (("c.code", codes), ("c.id", ids)):
        if values:
            sql, p = _in(column, list(values), cursor)
            terms.append(sql)
            params += p
    if accepting_since is not None:
        terms.append("c.status = %s OR (c.status = %s AND c.deadline >= %s)")
        params += [CampaignStatus.RUNNING.value, CampaignStatus.CLOSED.value, _db_time(accepting_since)]
    if not terms:
        return []
    cursor.execute(_CAMPAIGN_SQL + " WHERE " + " OR ".join(f"({t})" for t in terms), params)
    out: dict[int, CampaignInfo] = {}
    for row in cursor.fetchall():
        c = out.get(row[0])
        if c is None:
            c = out[row[0]] = CampaignInfo(row[0], row[1], row[2], row[3], row[4], _aware(row[5]), _aware(row[6]),
                                           row[7])
        if row[8] is not None:
            c.areas.append((row[8], row[9]))
    return list(out.values())


def default_pool_size(region_code: str, at: dt.datetime) -> int | None:
    """Outside any campaign: the policy's default pool size for the least severe zone type in force (None: no active
    profile with testing and zone rules)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    try:
        rules = active_profile(region_code=region_code, at=at).rules
        testing, zones = rules.section("testing"), rules.section("zones")
    except (PolicyNotActive, RulesIncomplete):
        return None
    return testing.default_pool_size_by_zone.get(zones.types[-1])


def _tube_setup(scan: Scan, site: Site, person_region: str, campaigns: list[CampaignInfo], default=None
                ) -> tuple[CampaignInfo | None, int]:
    """(campaign, capacity) of a tube opened by ``scan``; raises ScanRejected. ``default(region_code, at)``: the pool
    size outside any campaign (default :func:`default_pool_size`; the file loader passes a cached one)."""
    by_code = {c.code: c for c in campaigns}
    by_id = {c.id: c for c in campaigns}
    if scan.campaign_code:
        campaign = by_code.get(scan.campaign_code)
        problem = explicit_campaign_problem(campaign, scan.campaign_code, site.region_code, scan.sampled_at)
        if problem:
            raise ScanRejected("campaign", problem)
    elif site.campaign_id and site.campaign_id in by_id and by_id[site.campaign_id].accepts(scan.sampled_at):
        campaign = by_id[site.campaign_id]
    else:
        campaign = choose_campaign(campaigns, site.region_code, scan.sampled_at)
    if scan.kind in SINGLE_KINDS:
        return campaign, 1
    if scan.pool_size:
        return campaign, scan.pool_size
    area_region = person_region if (site.kind == "door_team" and person_region) else site.region_code
    if campaign is not None:
        return campaign, campaign.pool_size_for(area_region)
    size = (default or default_pool_size)(area_region, scan.sampled_at)
    if size is None:
        raise ScanRejected("pool_size", _("give pool_size: no campaign covers this site and no policy profile "
                                          "with a default pool size is active"))
    return campaign, size


@dataclass
class _Person:
    id: int
    region_code: str  # grid code ('' when unknown)


_PERSON_SQL = "SELECT p.id, p.id_hash, g.code FROM people_person p LEFT JOIN geo_region g ON g.id = p.grid_id WHERE "


def _persons(cursor, hashes: Sequence[str], ids: Sequence[int]) -> tuple[dict[str, _Person], dict[int, _Person]]:
    terms, params = [], []
    if hashes:
        sql, p = _in("p.id_hash", list(hashes), cursor)
        terms.append(sql)
        params += p
    if ids:
        sql, p = _in("p.id", list(ids), cursor)
        terms.append(sql)
        params += p
    by_hash: dict[str, _Person] = {}
    by_id: dict[int, _Person] = {}
    if not terms:
        return by_hash, by_id
    cursor.execute(_PERSON_SQL + " OR ".join(terms), params)
    for pid, key, grid in cursor.fetchall():
        person = _Person(pid, grid or "")
        by_hash[key] = person
        by_id[pid] = person
    return by_hash, by_id


PERSON_INSERT_COLUMNS = [
    "id_hash", "id_masked", "name", "sex", "birth_date", "phone", "household_id", "building_id", "grid_id", "unit",
    "room", "registered_address", "is_registered_local", "vulnerable", "industry", "employer", "workplace_id",
    "source", "needs_review", "created_at", "updated_at",
]


def provisional_row(number: str, name: str, grid_id: int | None, stamp) -> tuple:
    """A provisional person's row (:data:`PERSON_INSERT_COLUMNS`) from a valid, normalised ID number."""
    yes = 1 if _vendor() == "sqlite" else True
    return (idnumber.id_hash(number), idnumber.id_mask(number), (name or PROVISIONAL_NAME)[:MAX_NAME],
            idnumber.sex_of(number), idnumber.birth_date_of(number).isoformat(), "", None, None, grid_id, "", "", "",
            yes, 0, "", "", None, Source.PROVISIONAL.value, yes, stamp, stamp)


def _create_provisional(cursor, wanted: dict[str, tuple[str, str, Site]], *, actor, request, now
                        ) -> dict[str, tuple[_Person, bool]]:
    """Create provisional persons for ``{id_hash: (number, name, site)}``; returns ``{id_hash: (person, created)}``
    (``created`` False: someone else registered the number meanwhile). Audited and evented per person."""
    stamp = _db_time(now)
    cols = ", ".join(PERSON_INSERT_COLUMNS)
    marks = ", ".join(["%s"] * len(PERSON_INSERT_COLUMNS))
    out: dict[str, tuple[_Person, bool]] = {}
    created = []
    for key, (number, name, site) in wanted.items():
        grid_id = site.region_id if site.region_level == "grid" else None
        cursor.execute(f"INSERT INTO people_person ({cols}) VALUES ({marks}) ON CONFLICT (id_hash) DO NOTHING"
                       " RETURNING id", provisional_row(number, name, grid_id, stamp))
        row = cursor.fetchone()
        if row is not None:
            region = site.region_code if grid_id else ""
            out[key] = (_Person(row[0], region), True)
            created.append((row[0], region, site))
        else:
            by_hash, _ = _persons(cursor, [key], [])
            out[key] = (by_hash[key], False)
    for pid, region, site in created:
        audit.record(actor=actor, action="person.create", object_type="people.person", object_id=pid,
                     region_code=region or site.region_code, request=request,
                     detail={"provisional": True, "site": site.code})
    if created:
        emit_many([{"type": "people.person_created", "subject_type": "people.person", "subject_id": pid,
                    "region_code": region or site.region_code, "at": now,
                    "payload": {"provisional": True, "site": site.code}} for pid, region, site in created], actor=actor)
    return out


def _link_retests(cursor, claims: list[tuple[int, int, str]], now) -> dict[int, int]:
    """Claim each person's open retest task for their new retest/resample sample: ``claims`` = (person id, sample
    id, tube kind). Returns ``{sample id: task id}``."""
    if not claims:
        return {}
    where, params = _in("person_id", sorted({p for p, _, _ in claims}), cursor)
    cursor.execute(f"SELECT id, person_id, reason FROM testing_retesttask WHERE {where} AND status = %s"
                   f" ORDER BY created_at, id{' FOR UPDATE' if _pg() else ''}", [*params, "open"])
    open_tasks: dict[int, list[tuple[int, str]]] = {}
    for tid, pid, reason in cursor.fetchall():
        open_tasks.setdefault(pid, []).append((tid, reason))
    links: dict[int, int] = {}
    for pid, sample_id, kind in claims:
        tasks = open_tasks.get(pid)
        if not tasks:
            continue
        preferred = [t for t in tasks if t[1] == TASK_PREFERENCE.get(kind)]
        tid = (preferred or tasks)[0][0]
        tasks[:] = [t for t in tasks if t[0] != tid]
        links[sample_id] = tid
    if links:
        cursor.executemany("UPDATE testing_retesttask SET status = %s, sample_id = %s WHERE id = %s AND status = %s",
                           [("sampled", sid, tid, "open") for sid, tid in links.items()])
        cursor.executemany("UPDATE testing_sample SET retest_of_id = %s WHERE id = %s",
                           [(tid, sid) for sid, tid in links.items()])
    return links


_thread_lock = threading.Lock()
_held = threading.local()  # this thread has the turn
_lock_file: tuple[int, str, int] | None = None  # (pid, path, fd): a forked worker opens its own


def _lock_fd(path: str) -> int:
    global _lock_file
    if _lock_file is None or _lock_file[0] != os.getpid() or _lock_file[1] != path:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        _lock_file = (os.getpid(), path, fd)
    return _lock_file[2]


@contextlib.contextmanager
def write_turn():
    """SQLite: take turns for the write transaction with an OS lock that wakes the next writer at once.

    SQLite allows one writer; a writer that finds the database locked sleeps in its busy handler (1, 2, 5, 10 … ms)
    even when the lock is released a moment later. Two server processes scanning at full speed spent most of their
    time asleep that way (2 × 1 thread: ~400 scans/s at 15 % CPU). Queuing on ``flock`` on a file next to the database
    (and a thread lock inside the process) hands the turn over immediately; the database lock itself still protects
    everything (other writers simply never see a hot-path writer waiting for them). PostgreSQL: nothing to do.
    """
    name = str(connection.settings_dict["NAME"])
    if (_vendor() != "sqlite" or connection.in_atomic_block or getattr(_held, "yes", False)
            or name.startswith(("file:", ":memory:")) or "mode=memory" in name):  # in-memory (tests): no file
        # Inside an outer transaction (which may already hold SQLite's write lock) the turn is not waited for: the
        # holder of the turn could be waiting for our lock (until its busy timeout); nor when this thread has it.
        yield
        return
    with _thread_lock:
        try:
            fd = _lock_fd(name + ".write-turn")
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the finally below, or by the OS when the process dies
        except OSError:  # no lock file (e.g. a read-only directory): SQLite's own lock still protects the write
            fd = None
        _held.yes = True
        try:
            yield
        finally:
            _held.yes = False
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def hot_cursor():
    """The cursor of the hot path. PostgreSQL: a psycopg cursor with server-side parameter binding on Django's
    connection (same session, same transaction): parameters travel apart from the statement (arrays are not quoted
    element by element in Python, as Django's client-side-binding cursor does) and psycopg prepares a statement on its
    fifth execution in a connection, so the constant statements of the scan path are parsed and planned once per
    connection. Its errors are psycopg's own (see :func:`_retryable`). SQLite: Django's cursor."""
    if _vendor() != "postgresql":
        with connection.cursor() as c:
            yield c
        return
    import psycopg

    connection.ensure_connection()
    c = psycopg.Cursor(connection.connection)
    try:
        yield c
    finally:
        c.close()


def _retryable(exc: Exception) -> bool:
    code = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    return code in ("40P01", "40001")  # deadlock detected, serialization failure


def _run(fn):
    """Run ``fn()`` (which opens its own transaction), again when a concurrent writer got in between."""
    for attempt in range(_RETRIES):
        try:
            return fn()
        except _Retry:
            if attempt == _RETRIES - 1:
                raise Conflict(_("too many concurrent writes to the same tubes; send the scans again")) from None
        except Exception as exc:  # noqa: BLE001 - Django's DatabaseError or psycopg's (hot_cursor)
            if not _retryable(exc) or attempt == _RETRIES - 1:
                raise
        time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def _summary_events(groups: dict[int, dict], sites: dict[int, Site], *, actor, device: str, now) -> None:
    """One ``testing.scans_recorded`` event per site of the request (normally one)."""
    for site_id, counts in groups.items():
        if not (counts["recorded"] or counts["provisional"] or counts["sealed"]):
            continue
        site = sites[site_id]
        emit(EVENT_SCANS, subject_type="testing.samplingsite", subject_id=site.id, region_code=site.region_code,
             actor=actor, at=now, payload={"site": site.code, "device": device, **counts})


def _new_counts() -> dict:
    return {"recorded": 0, "duplicate": 0, "rejected": 0, "provisional": 0, "tubes_opened": 0, "sealed": []}


# --- one scan ------------------------------------------------------------------------------------------------------

_TUBE_INCREMENT = """
UPDATE testing_tube SET member_count = member_count + 1,
  status = CASE WHEN member_count + 1 >= capacity THEN %s ELSE status END,
  sealed_at = CASE WHEN member_count + 1 >= capacity THEN %s ELSE sealed_at END,
  opened_at = CASE WHEN opened_at > %s THEN %s ELSE opened_at END
WHERE barcode = %s AND status = %s AND member_count < capacity AND kind = %s AND site_id = %s{campaign}
RETURNING id, member_count, capacity, status
"""
_TUBE_INCREMENT_ANY = _TUBE_INCREMENT.format(campaign="")
_TUBE_INCREMENT_CAMPAIGN = _TUBE_INCREMENT.format(campaign=" AND campaign_id = %s")
_TUBE_COLUMNS = ("barcode, campaign_id, site_id, region_code, kind, capacity, member_count, status, opened_at,"
                 " sealed_at, batch_id, lab_id, received_at, outcome, resulted_at")
_TUBE_INSERT = (f"INSERT INTO testing_tube ({_TUBE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " NULL, NULL, NULL, '', NULL) ON CONFLICT (barcode) DO NOTHING RETURNING id")
_SAMPLE_COLUMNS = ["client_scan_id", "campaign_id", "tube_id", "person_id", "site_id", "sampler_id", "region_code",
                   "position", "device", "sampled_at", "recorded_at", "retest_of_id"]
_SAMPLE_INSERT_ONE = (f"INSERT INTO testing_sample ({', '.join(_SAMPLE_COLUMNS)}) VALUES "
                      f"({', '.join(['%s'] * len(_SAMPLE_COLUMNS))}) ON CONFLICT DO NOTHING RETURNING id")
_TUBE_SELECT = "SELECT id, barcode, kind, capacity, member_count, status, site_id, campaign_id, opened_at FROM testing_tube"
_EXISTING_ONE = ("SELECT id, client_scan_id, tube_id, person_id, position, retest_of_id FROM testing_sample"
                 " WHERE client_scan_id = %s UNION ALL"
                 " SELECT id, client_scan_id, tube_id, person_id, position, retest_of_id FROM testing_sample"
                 " WHERE tube_id = %s AND person_id = %s")


@dataclass
class ScanOutcome:
    result: ScanResult
    tube: TubeState | None
    created: bool  # a new sample was written


def _classify_existing(scan: Scan, rows, tube_id: int, person_id: int, result: ScanResult) -> bool:
    """Fill ``result`` from existing samples (a retry or a duplicate); False when none concerns this scan."""
    for sid, csid, t_id, p_id, position, retest in rows:
        if csid == scan.client_scan_id:
            if (t_id, p_id) != (tube_id, person_id):
                result.status, result.field = REJECTED, "client_scan_id"
                result.reason = _("this scan id was already used for another person or tube")
                return True
            result.status = DUPLICATE if scan.derived_id else RECORDED
            result.replayed = not scan.derived_id
            result.sample_id, result.position, result.retest_task = sid, position, retest
            return True
    for sid, _csid, t_id, p_id, position, retest in rows:
        if (t_id, p_id) == (tube_id, person_id):
            result.status, result.sample_id, result.position, result.retest_task = DUPLICATE, sid, position, retest
            return True
    return False


_SITE_PERSON_SQL = (_SITE_SQL.replace("FROM testing_samplingsite s", ", p.id, pg.code FROM testing_samplingsite s")
                    + " LEFT JOIN people_person p ON p.{key} = %s LEFT JOIN geo_region pg ON pg.id = p.grid_id"
                      " WHERE s.code = %s")
_SITE_PERSON_BY_HASH = _SITE_PERSON_SQL.format(key="id_hash")
_SITE_PERSON_BY_ID = _SITE_PERSON_SQL.format(key="id")


def _site_and_person(cursor, scan: Scan, user_id) -> tuple[Site | None, _Person | None]:
    """The single scan's site and person in one round trip."""
    if scan.id_hash:
        cursor.execute(_SITE_PERSON_BY_HASH, [user_id or 0, scan.id_hash, scan.site_code])
    else:
        cursor.execute(_SITE_PERSON_BY_ID, [user_id or 0, scan.token_person, scan.site_code])
    row = cursor.fetchone()
    if row is None:
        return None, None
    site = Site(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7], bool(row[8]))
    return site, (_Person(row[9], row[10] or "") if row[9] is not None else None)


class _Refused(Exception):
    """The tube (or the campaign) refuses the scan: the single-scan transaction rolls back and the caller answers."""

    def __init__(self, outcome: ScanOutcome):
        super().__init__(outcome.result.reason)
        self.outcome = outcome


def scan_record(*, actor, scope: Scope, raw: Mapping, request=None, device: str = "") -> ScanOutcome:
    """Record one scan (the single-scan API). Raises ValidationFailed (bad input, 422), NotFound/PermissionDenied (the
    site), Conflict (the tube refuses the scan: full, sealed, another kind/site/campaign; 409). A refused scan writes
    nothing (not even a provisional person)."""
    now = clock.now()
    try:
        scan = parse_scan(raw, now=now, device=device)
    except ScanRejected as exc:
        raise ValidationFailed(f"{exc.field}: {exc.reason}", extra={"field": exc.field, "reason": exc.reason}) from None
    with hot_cursor() as c:
        site, person = _site_and_person(c, scan, getattr(actor, "pk", None))
        problem = site_problem(site, scan.site_code, actor=actor, scope=scope)
        if problem is not None:
            raise problem
        campaign_id = None
        if scan.campaign_code:
            found = load_campaigns(c, codes=[scan.campaign_code])
            why = explicit_campaign_problem(found[0] if found else None, scan.campaign_code, site.region_code,
                                            scan.sampled_at)
            if why:
                raise ValidationFailed(f"campaign: {why}", extra={"field": "campaign", "reason": why})
            campaign_id = found[0].id
    if person is None and scan.token_person:
        reason = _("unknown person")
        raise ValidationFailed(f"person_token: {reason}", extra={"field": "person_token", "reason": reason})
    try:
        return _run(lambda: _scan_one(scan, site, person, campaign_id, actor=actor, request=request, now=now))
    except _Refused as refused:
        r, tube = refused.outcome.result, refused.outcome.tube
        extra = {"field": r.field, "reason": r.reason}
        if tube is not None:
            extra["tube"] = asdict(tube)
        # the tube refuses or the scan id belongs to another scan (409), or the input is unusable (422)
        error = Conflict if tube is not None or r.field == "client_scan_id" else ValidationFailed
        raise error(f"{r.field}: {r.reason}", extra=extra) from None


def _scan_one(scan: Scan, site: Site, person: _Person | None, campaign_id: int | None, *, actor, request, now
              ) -> ScanOutcome:
    result = ScanResult(index=0, status=RECORDED, tube=scan.tube)
    counts = _new_counts()
    with write_turn(), transaction.atomic(), hot_cursor() as c:
        if person is None:  # unknown ID number: a provisional person
            made = _create_provisional(c, {scan.id_hash: (scan.id_number, scan.name, site)}, actor=actor,
                                       request=request, now=now)
            person, result.provisional = made[scan.id_hash]
            counts["provisional"] = int(result.provisional)
        if not scan.given_id:
            scan.client_scan_id = derive_scan_id(scan.tube, person.id)
        result.client_scan_id = scan.client_scan_id
        at = _db_time(scan.sampled_at)
        tube, campaign_of_tube, opened = None, campaign_id, False
        for _attempt in range(2):
            params = [TubeStatus.SEALED.value, at, at, at, scan.tube, TubeStatus.OPEN.value, scan.kind, site.id]
            if campaign_id is not None:
                c.execute(_TUBE_INCREMENT_CAMPAIGN, [*params, campaign_id])
            else:
                c.execute(_TUBE_INCREMENT_ANY, params)
            row = c.fetchone()
            if row is not None:
                tube_id, tube = row[0], TubeState(scan.tube, scan.kind, row[2], row[1], row[3])
                break
            c.execute(_TUBE_SELECT + " WHERE barcode = %s", [scan.tube])
            existing = c.fetchone()
            if existing is not None:  # the tube refuses: first see whether this is a retry or a duplicate
                tube_id = existing[0]
                state = TubeState(scan.tube, existing[2], existing[3], existing[4], existing[5])
                c.execute(_EXISTING_ONE, [scan.client_scan_id, tube_id, person.id])
                if _classify_existing(scan, c.fetchall(), tube_id, person.id, result):
                    if result.status == REJECTED:
                        raise _Refused(ScanOutcome(result, state, False))
                    return ScanOutcome(result, state, False)
                result.status = REJECTED
                result.field, result.reason = tube_problem(
                    state, kind=scan.kind, site_ok=existing[6] == site.id,
                    campaign_ok=campaign_id is None or existing[7] == campaign_id)
                if not result.field:  # it changed between the two statements (PostgreSQL): try again
                    raise _Retry
                raise _Refused(ScanOutcome(result, state, False))
            # A new tube.
            campaigns = load_campaigns(c, codes=[scan.campaign_code] if scan.campaign_code else [],
                                       ids=[site.campaign_id] if site.campaign_id else [],
                                       accepting_since=scan.sampled_at)
            try:
                campaign, capacity = _tube_setup(scan, site, person.region_code, campaigns)
            except ScanRejected as exc:
                result.status, result.field, result.reason = REJECTED, exc.field, exc.reason
                raise _Refused(ScanOutcome(result, None, False)) from None
            status = TubeStatus.SEALED.value if capacity == 1 else TubeStatus.OPEN.value
            c.execute(_TUBE_INSERT, [scan.tube, campaign.id if campaign else None, site.id, site.region_code, scan.kind,
                                     capacity, 1, status, at, at if capacity == 1 else None])
            row = c.fetchone()
            if row is not None:
                tube_id, opened, campaign_of_tube = row[0], True, campaign.id if campaign else None
                tube = TubeState(scan.tube, scan.kind, capacity, 1, status)
                break
            # another device opened the same tube a moment ago: increment it instead
        if tube is None:
            raise _Retry
        if not opened and campaign_of_tube is None:
            c.execute("SELECT campaign_id FROM testing_tube WHERE id = %s", [tube_id])
            campaign_of_tube = c.fetchone()[0]
        c.execute(_SAMPLE_INSERT_ONE, [scan.client_scan_id, campaign_of_tube, tube_id, person.id, site.id,
                                       getattr(actor, "pk", None), person.region_code or site.region_code,
                                       tube.member_count, scan.device, at, _db_time(now), None])
        row = c.fetchone()
        if row is None:  # a retry or a duplicate: undo the increment, answer with the original record
            if opened:  # a tube this transaction created holds no sample: the scan id was used for another scan
                c.execute(_EXISTING_ONE, [scan.client_scan_id, tube_id, person.id])
                if _classify_existing(scan, c.fetchall(), tube_id, person.id, result) and result.status == REJECTED:
                    raise _Refused(ScanOutcome(result, None, False))  # rolls the new tube (and person) back
                raise _Retry
            c.execute("UPDATE testing_tube SET member_count = member_count - 1, status = %s, sealed_at = %s,"
                      " opened_at = COALESCE((SELECT MIN(sampled_at) FROM testing_sample WHERE tube_id = %s), opened_at)"
                      " WHERE id = %s", [TubeStatus.OPEN.value, None, tube_id, tube_id])
            tube.member_count -= 1
            tube.status = TubeStatus.OPEN.value
            c.execute(_EXISTING_ONE, [scan.client_scan_id, tube_id, person.id])
            if not _classify_existing(scan, c.fetchall(), tube_id, person.id, result):
                raise _Retry
            if result.status == REJECTED:
                raise _Refused(ScanOutcome(result, tube, False))
            if counts["provisional"]:
                _summary_events({site.id: counts}, {site.id: site}, actor=actor, device=scan.device, now=now)
            return ScanOutcome(result, tube, False)
        result.sample_id, result.position = row[0], tube.member_count
        if scan.kind in SINGLE_KINDS:
            links = _link_retests(c, [(person.id, row[0], scan.kind)], now)
            result.retest_task = links.get(row[0])
        counts["recorded"] = 1
        counts["tubes_opened"] = int(opened)
        if tube.status == TubeStatus.SEALED:
            counts["sealed"] = [tube.barcode]
        _summary_events({site.id: counts}, {site.id: site}, actor=actor, device=scan.device, now=now)
    return ScanOutcome(result, tube, True)


# --- batches -------------------------------------------------------------------------------------------------------


def scans_record(*, actor, scope: Scope, items: Sequence[Mapping], site: str = "", device: str = "",
                 campaign: str = "", request=None) -> BatchOutcome:
    """Record a batch of scans (a device flushing its queue): every item gets a result; bad items are rejected one by
    one and the rest are kept. ``site``/``device``/``campaign``: defaults for items that do not name their own; a
    default ``site`` outside the caller's reach refuses the whole request (404/403)."""
    if len(items) > MAX_BATCH:
        raise ValidationFailed(_("scans: at most %(n)s scans per batch") % {"n": MAX_BATCH}, extra={"field": "scans"})
    for name, value in (("site", site), ("device", device), ("campaign", campaign)):
        if "\x00" in value:
            raise ValidationFailed(f"{name}: " + _("contains a NUL character"), extra={"field": name})
    now = clock.now()
    today = clock.today()
    results: list[ScanResult] = []
    scans: list[Scan] = []
    for i, raw in enumerate(items):
        try:
            scans.append(parse_scan(raw, index=i, now=now, today=today, site=site, device=device, campaign=campaign,
                                    hash_id=False))
            results.append(ScanResult(index=i, status=RECORDED, tube=scans[-1].tube))
        except ScanRejected as exc:
            tube = raw.get("tube") if isinstance(raw.get("tube"), str) else ""
            results.append(ScanResult(index=i, status=REJECTED, tube=(tube or "")[:MAX_BARCODE], field=exc.field,
                                      reason=exc.reason,
                                      client_scan_id=str(raw.get("client_scan_id") or "")[:MAX_SCAN_ID]))
    numbered = [s for s in scans if s.id_number]
    for scan, key in zip(numbered, idnumber.id_hash_many([s.id_number for s in numbered]), strict=True):
        scan.id_hash = key
    user_id = getattr(actor, "pk", None)
    with hot_cursor() as c:
        sites = _sites(c, sorted({s.site_code for s in scans} | ({site} if site else set())), user_id)
        if site:
            problem = site_problem(sites.get(site), site, actor=actor, scope=scope)
            if problem is not None:
                raise problem
        live: list[Scan] = []
        problems = {code: site_problem(sites.get(code), code, actor=actor, scope=scope)
                    for code in {s.site_code for s in scans}}
        for scan in scans:
            problem = problems[scan.site_code]
            if problem is not None:
                _reject(results[scan.index], "site", problem.message)
            else:
                live.append(scan)
        by_hash, by_id = _persons(c, sorted({s.id_hash for s in live if s.id_hash}),
                                  sorted({s.token_person for s in live if s.token_person}))
    scans = []
    for scan in live:
        if scan.token_person and scan.token_person not in by_id:
            _reject(results[scan.index], "person_token", _("unknown person"))
        else:
            scans.append(scan)
    if not scans:
        return _batch_answer(results, {}, [])
    site_by_code = {s.code: s for s in sites.values()}
    return _run(lambda: _scan_batch(scans, results, site_by_code, by_hash, by_id, actor=actor, request=request,
                                    now=now))


def _reject(result: ScanResult, field_name: str, reason: str) -> None:
    result.status, result.field, result.reason = REJECTED, field_name, reason


def _batch_answer(results: list[ScanResult], tubes: dict[str, TubeState], order: list[str]) -> BatchOutcome:
    counts = {RECORDED: 0, DUPLICATE: 0, REJECTED: 0, "provisional": 0, "replayed": 0}
    for r in results:
        counts[r.status] += 1
        counts["provisional"] += int(r.provisional)
        counts["replayed"] += int(r.replayed)
    return BatchOutcome(results, [tubes[b] for b in order if b in tubes], counts)


@dataclass
class _Tube:
    id: int
    state: TubeState
    site_id: int | None
    campaign_id: int | None
    opened_at: dt.datetime | None
    new: bool = False
    changed: bool = False
    sealed_at: dt.datetime | None = None


def _lock_tubes(c, barcodes: Sequence[str]) -> dict[str, _Tube]:
    where, params = _in("barcode", sorted(barcodes), c)
    c.execute(f"{_TUBE_SELECT} WHERE {where} ORDER BY barcode{' FOR UPDATE' if _pg() else ''}", params)
    return {row[1]: _Tube(row[0], TubeState(row[1], row[2], row[3], row[4], row[5]), row[6], row[7], _aware(row[8]))
            for row in c.fetchall()}


def _scan_batch(scans: list[Scan], results: list[ScanResult], sites: dict[str, Site], by_hash, by_id, *, actor,
                request, now) -> BatchOutcome:
    # Reset per attempt (a retry starts again from the validated scans).
    for scan in scans:
        r = results[scan.index]
        r.status, r.field, r.reason, r.provisional, r.replayed = RECORDED, "", "", False, False
        r.sample_id = r.position = r.retest_task = None
        if not scan.given_id:
            scan.client_scan_id = ""
    sites_by_id = {s.id: s for s in sites.values()}
    groups = {s.id: _new_counts() for s in sites.values()}
    tube_order: list[str] = []
    for scan in scans:
        if scan.tube not in tube_order:
            tube_order.append(scan.tube)
    with write_turn(), transaction.atomic(), hot_cursor() as c:
        # Persons: unknown ID numbers become provisional persons.
        persons: dict[int, _Person] = {}
        unknown = {}
        for scan in scans:
            if scan.token_person:
                persons[scan.index] = by_id[scan.token_person]
            elif scan.id_hash in by_hash:
                persons[scan.index] = by_hash[scan.id_hash]
            elif scan.id_hash not in unknown:
                unknown[scan.id_hash] = (scan.id_number, scan.name, sites[scan.site_code])
        made = _create_provisional(c, unknown, actor=actor, request=request, now=now) if unknown else {}
        claimed_provisional = set()
        for scan in scans:
            if scan.index not in persons:
                person, created = made[scan.id_hash]
                persons[scan.index] = person
                if created and scan.id_hash not in claimed_provisional:
                    claimed_provisional.add(scan.id_hash)
                    results[scan.index].provisional = True
                    groups[sites[scan.site_code].id]["provisional"] += 1
            if not scan.given_id:
                scan.client_scan_id = derive_scan_id(scan.tube, persons[scan.index].id)
            results[scan.index].client_scan_id = scan.client_scan_id

        # Tubes: lock the existing ones; open the missing ones (ON CONFLICT: a concurrent device may open one too).
        tubes = _lock_tubes(c, tube_order)
        missing = [b for b in tube_order if b not in tubes]
        campaign_codes = sorted({s.campaign_code for s in scans if s.campaign_code})
        campaigns: list[CampaignInfo] = []
        if missing or campaign_codes:
            campaigns = load_campaigns(
                c, codes=campaign_codes, ids=sorted({s.campaign_id for s in sites.values() if s.campaign_id}),
                accepting_since=min(s.sampled_at for s in scans) if missing else None)
        by_code = {k.code: k for k in campaigns}
        if missing:
            first = {}
            for scan in scans:
                if scan.tube in missing and scan.tube not in first:
                    try:
                        site = sites[scan.site_code]
                        campaign, capacity = _tube_setup(scan, site, persons[scan.index].region_code, campaigns)
                        first[scan.tube] = (scan, site, campaign, capacity)
                    except ScanRejected as exc:  # that scan is refused; a later one may still open the tube
                        _reject(results[scan.index], exc.field, exc.reason)
            rows = [(b, cp.id if cp else None, site.id, site.region_code, scan.kind, capacity, 0,
                     TubeStatus.OPEN.value, _db_time(scan.sampled_at), None)
                    for b, (scan, site, cp, capacity) in sorted(first.items())]
            if rows:
                c.executemany(_TUBE_INSERT.replace(" RETURNING id", ""), rows)
                fresh = _lock_tubes(c, [r[0] for r in rows])
                for tube in fresh.values():
                    tube.new = tube.state.member_count == 0  # 0: ours (a concurrent device's tube has members)
                tubes.update(fresh)

        # Existing samples of these scans: retries (same scan id) and duplicates (same person, same tube).
        ids = [s.client_scan_id for s in scans]
        tube_ids = sorted({t.id for t in tubes.values()})
        person_ids = sorted({p.id for p in persons.values()})
        w1, p1 = _in("client_scan_id", ids, c)
        w2, p2 = _in("tube_id", tube_ids, c)
        w3, p3 = _in("person_id", person_ids, c)
        c.execute("SELECT id, client_scan_id, tube_id, person_id, position, retest_of_id FROM testing_sample"
                  f" WHERE {w1} UNION ALL SELECT id, client_scan_id, tube_id, person_id, position, retest_of_id"
                  f" FROM testing_sample WHERE {w2} AND {w3}", [*p1, *p2, *p3])
        by_scan_id, by_pair = {}, {}
        for row in c.fetchall():
            by_scan_id[row[1]] = row
            by_pair[(row[2], row[3])] = row

        # Allocate positions in request order. Repeats inside the batch: the same scan id again is a retry of the
        # earlier item (a duplicate when the device sent no ids), the same person and tube again a duplicate.
        new_rows = []
        repeats: list[tuple[Scan, Scan]] = []  # (later item, the accepted earlier item it repeats)
        seen_ids: dict[str, Scan] = {}
        seen_pairs: dict[tuple[int, int], Scan] = {}
        user_id = getattr(actor, "pk", None)
        for scan in scans:
            r = results[scan.index]
            if r.status == REJECTED:
                continue
            person = persons[scan.index]
            site = sites[scan.site_code]
            tube = tubes.get(scan.tube)
            if tube is None:  # its opening scan was refused and no later scan could open it
                _reject(r, "tube", _("tube %(barcode)s could not be opened (see the scan that opened it)") % {
                    "barcode": scan.tube})
                continue
            pair = (tube.id, person.id)
            stored = [row for row in (by_scan_id.get(scan.client_scan_id), by_pair.get(pair)) if row is not None]
            if stored:
                _classify_existing(scan, stored, tube.id, person.id, r)
                continue
            earlier = seen_ids.get(scan.client_scan_id)
            if earlier is not None:
                if (earlier.tube, persons[earlier.index].id) != (scan.tube, person.id):
                    _reject(r, "client_scan_id", _("repeats the scan id of item %(index)s for another person or tube") % {
                        "index": earlier.index})
                else:
                    r.status, r.replayed = (DUPLICATE, False) if scan.derived_id else (RECORDED, True)
                    repeats.append((scan, earlier))
                continue
            earlier = seen_pairs.get(pair)
            if earlier is not None:
                r.status = DUPLICATE
                repeats.append((scan, earlier))
                continue
            if scan.campaign_code:
                named = by_code.get(scan.campaign_code)
                why = explicit_campaign_problem(named, scan.campaign_code, site.region_code, scan.sampled_at)
                if why:
                    _reject(r, "campaign", why)
                    continue
                campaign_ok = tube.campaign_id == named.id
            else:
                campaign_ok = True
            problem_field, reason = tube_problem(tube.state, kind=scan.kind, site_ok=tube.site_id == site.id,
                                                 campaign_ok=campaign_ok)
            if problem_field:
                _reject(r, problem_field, reason)
                continue
            seen_ids[scan.client_scan_id] = scan
            seen_pairs[pair] = scan
            state = tube.state
            state.member_count += 1
            tube.changed = True
            if tube.opened_at is None or scan.sampled_at < tube.opened_at:
                tube.opened_at = scan.sampled_at
            if state.member_count >= state.capacity:
                state.status = TubeStatus.SEALED.value
                tube.sealed_at = scan.sampled_at
                groups[site.id]["sealed"].append(state.barcode)
            r.position = state.member_count
            groups[site.id]["recorded"] += 1
            new_rows.append((scan.client_scan_id, tube.campaign_id, tube.id, person.id, site.id, user_id,
                             person.region_code or site.region_code, state.member_count, scan.device,
                             _db_time(scan.sampled_at), _db_time(now), None))
        for t in tubes.values():
            if t.new and t.changed:
                groups[t.site_id]["tubes_opened"] += 1

        ids_by_scan = _insert_samples(c, new_rows)
        if len(ids_by_scan) != len(new_rows):
            raise _Retry  # a concurrent request wrote one of these scan ids meanwhile
        for scan in scans:
            r = results[scan.index]
            if r.status == RECORDED and not r.replayed and r.sample_id is None:
                r.sample_id = ids_by_scan[scan.client_scan_id]
        for scan, earlier in repeats:  # repeats inside the batch point at the first one's record
            r, first_result = results[scan.index], results[earlier.index]
            r.sample_id, r.position = first_result.sample_id, first_result.position
        claims = [(persons[s.index].id, results[s.index].sample_id, s.kind) for s in scans
                  if s.kind in SINGLE_KINDS and results[s.index].status == RECORDED and not results[s.index].replayed]
        links = _link_retests(c, claims, now)
        for scan in scans:
            r = results[scan.index]
            if r.sample_id in links and r.status == RECORDED:
                r.retest_task = links[r.sample_id]
        _write_tubes(c, [t for t in tubes.values() if t.changed])
        # an opened tube none of whose scans was accepted (all refused) must not stay behind empty
        empty = [t.id for t in tubes.values() if t.new and not t.changed]
        if empty:
            w, p = _in("id", empty, c)
            c.execute(f"DELETE FROM testing_tube WHERE {w}", p)
            for barcode in [b for b, t in tubes.items() if t.id in empty]:
                del tubes[barcode]
        _summary_events(groups, sites_by_id, actor=actor, device=scans[0].device, now=now)
    return _batch_answer(results, {b: t.state for b, t in tubes.items()}, tube_order)


def _insert_samples(c, rows: list[tuple]) -> dict[str, int]:
    """Insert sample rows (:data:`_SAMPLE_COLUMNS`); returns ``{client_scan_id: id}`` of the rows written."""
    if not rows:
        return {}
    cols = ", ".join(_SAMPLE_COLUMNS)
    if _pg():
        arrays = list(zip(*rows, strict=True))
        types = ["text", "bigint", "bigint", "bigint", "bigint", "bigint", "text", "integer", "text", "timestamptz",
                 "timestamptz", "bigint"]
        c.execute(f"INSERT INTO testing_sample ({cols}) SELECT * FROM unnest("
                  + ", ".join(f"{_ph(c)}::{t}[]" for t in types) + ") ON CONFLICT DO NOTHING RETURNING client_scan_id, id",
                  [list(a) for a in arrays])
        return dict(c.fetchall())
    out: dict[str, int] = {}
    width = len(_SAMPLE_COLUMNS)
    step = max(1, 30_000 // width)  # under SQLite's 32,766 bound parameters
    for i in range(0, len(rows), step):
        part = rows[i: i + step]
        marks = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(part))
        c.execute(f"INSERT INTO testing_sample ({cols}) VALUES {marks} ON CONFLICT DO NOTHING"
                  " RETURNING client_scan_id, id", [v for row in part for v in row])
        out.update(c.fetchall())
    return out


def _write_tubes(c, tubes: list[_Tube]) -> None:
    _write_tubes_rows(c, [(t.state.member_count, t.state.status, _db_time(t.sealed_at), _db_time(t.opened_at), t.id)
                          for t in tubes])


def _write_tubes_rows(c, rows: list[tuple]) -> None:
    """Set tubes' counts: rows of (member_count, status, sealed_at or None, earliest new swab time, id)."""
    if not rows:
        return
    if _pg():
        b = _ph(c)
        c.execute("UPDATE testing_tube t SET member_count = v.n, status = v.st, sealed_at = COALESCE(v.sealed, t.sealed_at),"
                  f" opened_at = LEAST(t.opened_at, v.opened) FROM unnest({b}::integer[], {b}::text[], {b}::timestamptz[],"
                  f" {b}::timestamptz[], {b}::bigint[]) AS v(n, st, sealed, opened, id) WHERE t.id = v.id",
                  [list(a) for a in zip(*rows, strict=True)])
    else:
        c.executemany("UPDATE testing_tube SET member_count = %s, status = %s, sealed_at = COALESCE(%s, sealed_at),"
                      " opened_at = MIN(opened_at, %s) WHERE id = %s", rows)


def _samples_ids(c, scan_ids: list[str]) -> dict[str, int]:
    """``{client_scan_id: sample id}``."""
    out: dict[str, int] = {}
    for i in range(0, len(scan_ids), 5000):
        where, params = _in("client_scan_id", scan_ids[i: i + 5000], c)
        c.execute(f"SELECT client_scan_id, id FROM testing_sample WHERE {where}", params)
        out.update(c.fetchall())
    return out


# --- tubes: seal, read ---------------------------------------------------------------------------------------------


def _plausible_barcode(barcode: str) -> bool:
    return 0 < len(barcode) <= MAX_BARCODE and set(barcode) <= _BARCODE_CHARS


def tube_seal(*, actor, scope: Scope, barcode: str, request=None) -> dict:
    """Seal a tube early by hand (fewer people than its capacity). Sealing a sealed tube again changes nothing."""
    from jingkong.testing.models import Tube

    now = clock.now()
    if not _plausible_barcode(barcode):
        raise NotFound(_("tube %(barcode)s not found") % {"barcode": barcode})
    with transaction.atomic():
        qs = Tube.objects.select_related("site")
        if _pg():
            qs = qs.select_for_update(of=("self",))
        tube = qs.filter(barcode=barcode).first()
        if tube is None or not scope.contains(tube.region_code):
            raise NotFound(_("tube %(barcode)s not found") % {"barcode": barcode})
        if getattr(actor, "role", None) == Role.SAMPLER and (
                tube.site_id is None or not tube.site.samplers.filter(pk=actor.pk).exists()):
            raise PermissionDenied(_("you are not assigned to the site of tube %(barcode)s") % {"barcode": barcode})
        if tube.status == TubeStatus.OPEN:
            tube.status, tube.sealed_at = TubeStatus.SEALED, now
            tube.save(update_fields=["status", "sealed_at"])
            emit(EVENT_SEALED, subject=tube, region_code=tube.region_code, actor=actor, at=now,
                 payload={"barcode": tube.barcode, "members": tube.member_count, "capacity": tube.capacity,
                          "early": tube.member_count < tube.capacity})
    return tube_detail(scope=scope, barcode=barcode, members=False)


def tube_detail(*, scope: Scope, barcode: str, members: bool, actor=None, request=None) -> dict:
    """A tube with its state; with ``members`` its swabs (ID numbers masked), audited as a person list read."""
    from jingkong.testing.models import Sample, Tube

    if not _plausible_barcode(barcode):
        raise NotFound(_("tube %(barcode)s not found") % {"barcode": barcode})
    tube = Tube.objects.select_related("site", "campaign", "lab", "batch").filter(barcode=barcode).first()
    if tube is None or not scope.contains(tube.region_code):
        raise NotFound(_("tube %(barcode)s not found") % {"barcode": barcode})
    out = {
        "barcode": tube.barcode, "kind": tube.kind, "capacity": tube.capacity, "member_count": tube.member_count,
        "status": tube.status, "region_code": tube.region_code,
        "site": tube.site.code if tube.site_id else None,
        "campaign": tube.campaign.code if tube.campaign_id else None,
        "opened_at": tube.opened_at, "sealed_at": tube.sealed_at,
        "batch": tube.batch.code if tube.batch_id else None, "lab": tube.lab.code if tube.lab_id else None,
        "received_at": tube.received_at, "outcome": tube.outcome or None, "resulted_at": tube.resulted_at,
        "members": None,
    }
    if members:
        rows = list(Sample.objects.filter(tube=tube).select_related("person").order_by("position", "id"))
        out["members"] = [{"position": s.position, "person_id": s.person_id, "id_masked": s.person.id_masked,
                           "name": s.person.name, "region_code": s.region_code, "sampled_at": s.sampled_at,
                           "provisional": s.person.source == Source.PROVISIONAL} for s in rows]
        audit.record(actor=actor, action="person.list", object_type="people.person", region_code=tube.region_code,
                     request=request, detail={"tube": tube.barcode, "count": len(rows)})
    return out


def site_open_tubes(*, scope: Scope, site_code: str) -> dict:
    """A site's open tubes (a device that restarts picks up where it was)."""
    from jingkong.testing.models import SamplingSite, Tube

    site = SamplingSite.objects.filter(code=site_code).first() if "\x00" not in site_code else None
    if site is None or not scope.contains(site.region_code):
        raise NotFound(_("sampling site %(code)s not found") % {"code": site_code})
    tubes = Tube.objects.filter(site=site, status=TubeStatus.OPEN).order_by("opened_at", "id")
    return {"site": site.code, "tubes": [
        {"barcode": t.barcode, "kind": t.kind, "capacity": t.capacity, "member_count": t.member_count,
         "status": t.status, "opened_at": t.opened_at} for t in tubes]}
