"""Drafting a case's activity timeline (行程轨迹) and flagging its problems.

* From the registry: home (the person's building/household) and workplace (the registered workplace venue), each
  spanning the look-back window — cheap SQL, done when the case is created.
* From the check-in lake (场所码 scans, DuckDB over Parquet): one ``venue`` stay per check-in inside the window — done
  by the contact-finding job, after the results transaction has committed (the lake lives outside the database).

Every drafted row carries a ``source_ref`` so drafting again is a no-op. Problems are flagged, never dropped:
inverted times (``flag_inverted``), overlaps between outings (``flag_overlap``), check-ins at a venue code the base map
does not know (``flag_unknown_venue``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from jingkong.core import clock
from jingkong.people.models import Person
from jingkong.policy.selectors import PolicyNotActive
from jingkong.tracing import rules, windows
from jingkong.tracing.models import Case, Stay, StayKind, StaySource


def _aware(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:  # the lake stores UTC; a naive value is UTC, never local time
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _windows(cases: Iterable[Case], now: dt.datetime) -> dict[int, rules.Window]:
    out = {}
    for case in cases:
        try:
            out[case.pk], _ = windows.case_window(case, now=now)
        except (rules.NoAnchor, PolicyNotActive):
            continue  # drafted again by the contact-finding job once the case has an onset / a profile is active
    return out


def draft_registry(cases: list[Case], *, now: dt.datetime | None = None) -> int:
    """Home and workplace rows from the registry for each case (idempotent). Returns the number of rows added."""
    now = now or clock.now()
    spans = _windows(cases, now)
    if not spans:
        return 0
    people = {
        p["pk"]: p for p in Person.objects.filter(pk__in=[c.person_id for c in cases if c.pk in spans]).values(
            "pk", "building__address", "building__code", "unit", "room", "household__code", "workplace_id",
            "workplace__name", "workplace__code", "employer")
    }
    rows = []
    for case in cases:
        window = spans.get(case.pk)
        person = people.get(case.person_id)
        if window is None or person is None:
            continue
        home = " ".join(p for p in (person["building__address"] or person["building__code"] or "",
                                    "-".join(x for x in (person["unit"], person["room"]) if x)) if p)
        if home or person["household__code"]:
            rows.append(Stay(case=case, kind=StayKind.HOME, place=home or person["household__code"], start=window.start,
                             end=window.end, source=StaySource.REGISTRY, source_ref="registry:home",
                             created_at=now, updated_at=now))
        if person["workplace_id"]:
            rows.append(Stay(case=case, kind=StayKind.WORKPLACE, venue_id=person["workplace_id"],
                             venue_code=person["workplace__code"] or "",
                             place=person["workplace__name"] or person["employer"], start=window.start, end=window.end,
                             source=StaySource.REGISTRY, source_ref="registry:workplace", created_at=now,
                             updated_at=now))
    return _insert(rows)


def registry_follow(cases: list[Case], *, now: dt.datetime | None = None) -> None:
    """After the cases' windows moved (onset, sampling, isolation, variant changed): the registry rows span the new
    window (drafted now if the window could not be computed before) and the flags are recomputed."""
    now = now or clock.now()
    spans = _windows(cases, now)
    stays = list(Stay.objects.filter(case_id__in=list(spans), source=StaySource.REGISTRY).only("id", "case_id"))
    for stay in stays:
        window = spans[stay.case_id]
        stay.start, stay.end, stay.updated_at = window.start, window.end, now
    Stay.objects.bulk_update(stays, ["start", "end", "updated_at"], batch_size=1000)
    draft_registry(cases, now=now)
    flags_refresh([c.pk for c in cases])


def draft_checkins(cases: list[Case], lake, *, now: dt.datetime | None = None) -> dict:
    """One ``venue`` stay per check-in of each case inside its window (idempotent). Returns counts."""
    now = now or clock.now()
    spans = _windows(cases, now)
    if not spans or lake is None:
        return {"checkins": 0, "added": 0}
    by_person = {c.person_id: c for c in cases if c.pk in spans}
    start = min(w.start for w in spans.values())
    end = max(w.end for w in spans.values())
    found = lake.stays_of(list(by_person), start, end)
    rows = []
    for r in found:
        case = by_person.get(int(r["person_id"]))
        if case is None:
            continue
        window = spans[case.pk]
        checkin, checkout = _aware(r.get("checkin_at")), _aware(r.get("checkout_at"))
        if checkin is None:
            continue
        if checkout is None:
            checkout = checkin  # no leave time: a point in time (never dropped)
        if checkin > window.end or max(checkin, checkout) < window.start:
            continue
        venue_id = r.get("venue_id")
        venue_code = str(r.get("venue_code") or "")
        rows.append(Stay(
            case=case, kind=StayKind.VENUE, venue_id=int(venue_id) if venue_id is not None else None,
            venue_code=venue_code, start=checkin, end=checkout, source=StaySource.CHECKIN,
            source_ref=f"checkin:{venue_id if venue_id is not None else venue_code}:{checkin.isoformat()}",
            flag_inverted=checkout < checkin, flag_unknown_venue=venue_id is None,
            created_at=now, updated_at=now,
        ))
    added = _insert(rows)
    flags_refresh([c.pk for c in by_person.values()])
    return {"checkins": len(found), "added": added}


def _insert(rows: list[Stay]) -> int:
    if not rows:
        return 0
    case_ids = {r.case_id for r in rows}
    before = Stay.objects.filter(case_id__in=case_ids).count()
    Stay.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)  # source_ref is unique per case
    return Stay.objects.filter(case_id__in=case_ids).count() - before


def flags_refresh(case_ids: Iterable[int]) -> int:
    """Recompute the problem flags of the cases' timelines; writes only rows whose flags change."""
    case_ids = list(case_ids)
    if not case_ids:
        return 0
    stays = list(Stay.objects.filter(case_id__in=case_ids).only(
        "id", "case_id", "kind", "start", "end", "venue_id", "venue_code", "flag_overlap", "flag_inverted",
        "flag_unknown_venue"))
    by_case: dict[int, list[rules.StaySpan]] = {}
    for s in stays:
        by_case.setdefault(s.case_id, []).append(rules.StaySpan(s.pk, s.kind, s.start, s.end))
    overlapping: set[int] = set()
    for spans in by_case.values():
        overlapping |= rules.overlapping(spans)
    changed = []
    for s in stays:
        flags = (s.pk in overlapping, s.end < s.start, s.venue_id is None and bool(s.venue_code))
        if flags != (s.flag_overlap, s.flag_inverted, s.flag_unknown_venue):
            s.flag_overlap, s.flag_inverted, s.flag_unknown_venue = flags
            changed.append(s)
    if changed:
        Stay.objects.bulk_update(changed, ["flag_overlap", "flag_inverted", "flag_unknown_venue"], batch_size=1000)
    return len(changed)
