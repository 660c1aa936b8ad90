"""Reads for the coverage screens and API (应检尽检): the campaign as the caller may see it, and the untested list
grouped for the sweep (扫楼). The figures themselves come from :mod:`jingkong.analytics.coverage` (set-based SQL).

Every untested list handed out is audited here (one record per person listed: person reads are audited).
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable

from django.core.cache import cache
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.access.roles import Perm
from jingkong.analytics import coverage
from jingkong.core import clock
from jingkong.core.exceptions import ValidationFailed
from jingkong.people import idnumber
from jingkong.people.models import VULNERABLE_LABELS, Sex, Source, Vulnerable
from jingkong.testing import selectors
from jingkong.testing.models import Campaign

# Figures that took long to compute (a whole large district: ~10 s at 10 M persons) are shared for a few seconds
# between the screens that refresh them (every board polls every ~30 s); quick ones are always fresh. While one
# request recomputes them, the others get the previous figures with their time (up to STALE_SECONDS old) instead of
# starting the same computation again: a dozen boards on a district must not mean a dozen full passes at once.
CACHE_SECONDS = 15
STALE_SECONDS = 300
SLOW_SECONDS = 1.0

UNTESTED_LIST_ACTION = "testing.untested_list"
UNTESTED_EXPORT_ACTION = "testing.untested_export"
DEFAULT_LIMIT = 5000
MAX_LIMIT = 20000
EXPORT_LIMIT = 100_000


def campaign_get(*, scope: Scope, campaign_id: int) -> Campaign:
    """The campaign, if its region overlaps the caller's scope (404 otherwise: existence is not revealed)."""
    return selectors.campaign_get(scope=scope, campaign_id=campaign_id)


def area_rows(area: coverage.Area, level: str | None) -> tuple[list[dict], object]:
    """``coverage.area_rows`` and the time they are as of: reused for up to CACHE_SECONDS when slow to compute, and
    up to STALE_SECONDS while another request is computing them afresh."""
    key = f"jk:coverage:{area.campaign_id}:{area.code}:{level or '-'}"
    hit = cache.get(key)  # (rows, as_of, computed at: time.time())
    if hit is not None and time.time() - hit[2] < CACHE_SECONDS:
        return hit[0], hit[1]
    lock = key + ":computing"
    if hit is not None and not cache.add(lock, 1, timeout=STALE_SECONDS):
        return hit[0], hit[1]  # someone is computing them: the previous figures, with their time
    try:
        as_of, started = clock.now(), time.perf_counter()
        rows = coverage.area_rows(area, level)
        if time.perf_counter() - started >= SLOW_SECONDS:
            cache.set(key, (rows, as_of, time.time()), STALE_SECONDS)
    finally:
        if hit is not None:
            cache.delete(lock)
    return rows, as_of


def campaign_ref(campaign: Campaign) -> dict:
    return {"id": campaign.pk, "code": campaign.code, "name": campaign.name, "region_code": campaign.region_code,
            "key_industry": campaign.key_industry, "status": campaign.status, "starts_at": campaign.starts_at,
            "deadline": campaign.deadline}


# --- the untested list ----------------------------------------------------------------------------------------------


def _natural(text: str | None) -> tuple:
    """Sort key that puts room 2 before room 10 (and empty last)."""
    if not text:
        return ((1, 0, ""),)
    return tuple((0, int(part), "") if part.isdigit() else (0, -1, part) for part in re.findall(r"\d+|\D+", text))


def person_item(row: dict, *, show_phone: bool) -> dict:
    flags = int(row["vulnerable"] or 0)
    born = row["birth_date"]
    return {
        "id": row["id"], "id_masked": row["id_masked"], "name": row["name"], "sex": row["sex"],
        "birth_year": getattr(born, "year", None) or (int(str(born)[:4]) if born else None),
        "phone": row["phone"] if show_phone else idnumber.phone_mask(row["phone"] or ""),
        "vulnerable": [flag.name.lower() for flag in Vulnerable if flags & flag],
        "door_visit": bool(flags & Vulnerable.LIMITED_MOBILITY),
        "state": row["state"], "provisional": row["source"] == Source.PROVISIONAL,
        "grid": row["grid_code"], "employer": row["employer"] or "",
    }


def group_by_building(rows: Iterable[dict], *, show_phone: bool) -> list[dict]:
    """Untested rows → buildings → households (unit/room) → persons, for the sweep: buildings by grid and code
    (persons without a recorded building last in their grid), households by unit and room in natural order; each
    building with its counts. Pure: no database."""
    buildings: dict[tuple, dict] = {}
    for row in rows:
        b_key = (row["grid_code"], row["building_code"] is None, _natural(row["building_code"]), row["building_code"])
        building = buildings.get(b_key)
        if building is None:
            building = buildings[b_key] = {
                "building": row["building_code"], "address": row["building_address"] or "", "grid": row["grid_code"],
                "not_sampled": 0, "resample": 0, "door_visits": 0, "_households": {},
            }
        unit = row["household_unit"] if row["household_code"] else row["unit"]
        room = row["household_room"] if row["household_code"] else row["room"]
        h_key = (_natural(unit or ""), _natural(room or ""), row["household_code"] or "")
        household = building["_households"].setdefault(
            h_key, {"household": row["household_code"], "unit": unit or "", "room": room or "", "persons": []})
        item = person_item(row, show_phone=show_phone)
        household["persons"].append(item)
        building["resample" if item["state"] == "resample" else "not_sampled"] += 1
        building["door_visits"] += item["door_visit"]
    out = []
    for key in sorted(buildings):
        building = buildings[key]
        households = building.pop("_households")
        building["households"] = [households[k] for k in sorted(households)]
        for household in building["households"]:
            household["persons"].sort(key=lambda p: p["id"])
        out.append(building)
    return out


def untested(area: coverage.Area, *, user, request=None, limit: int = DEFAULT_LIMIT, action: str = UNTESTED_LIST_ACTION,
             include_resample: bool = True) -> tuple[list[dict], bool]:
    """The area's untested persons (at most ``limit``; the flag says whether more exist), audited: one record per
    person listed, naming the campaign and the area. Lists are made per street, community or grid (the sweep is
    organised there; a whole district's list would be millions of names)."""
    if coverage.LEVEL_LENGTH.get(area.level, 0) < coverage.LEVEL_LENGTH["street"]:
        raise ValidationFailed(_("Untested lists are made per street, community or grid: choose one."),
                               extra={"field": "region"})
    rows = coverage.untested_persons(area, include_resample=include_resample, limit=limit + 1)
    truncated = len(rows) > limit
    rows = rows[:limit]
    audit.record_many(actor=user, action=action, object_type="people.person", request=request,
                      items=((row["id"], row["grid_code"]) for row in rows),
                      detail={"campaign": area.campaign_code, "area": area.code, "count": len(rows),
                              "truncated": truncated})
    return rows, truncated


def show_phone(user) -> bool:
    return user.has_role_perm(Perm.PERSON_VIEW_PHONE)


# --- CSV export -----------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(rows: Iterable[dict], *, show_phone: bool) -> str:
    """The untested list as CSV for spreadsheets: UTF-8 with a byte-order mark, masked ID numbers, one row per
    person in sweep order (grid, building, unit, room)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_("Grid"), _("Building"), _("Address"), _("Unit"), _("Room"), _("Household"), _("Name"),
                     _("ID number (masked)"), _("Sex"), _("Year of birth"), _("Phone"), _("Vulnerable groups"),
                     _("Door-to-door visit"), _("State"), _("Provisional record"), _("Employer")])
    state_labels = {"not_sampled": _("not sampled"), "resample": _("to be resampled")}
    sexes = dict(Sex.choices)
    vulnerable = {flag.name.lower(): str(label) for flag, label in VULNERABLE_LABELS.items()}
    for building in group_by_building(rows, show_phone=show_phone):
        for household in building["households"]:
            for p in household["persons"]:
                writer.writerow([
                    p["grid"], _cell(building["building"] or ""), _cell(building["address"]), _cell(household["unit"]),
                    _cell(household["room"]), _cell(household["household"] or ""), _cell(p["name"]), p["id_masked"],
                    str(sexes.get(p["sex"], p["sex"])), p["birth_year"] or "", _cell(p["phone"]),
                    ";".join(vulnerable.get(v, v) for v in p["vulnerable"]),
                    _("yes") if p["door_visit"] else "", state_labels.get(p["state"], p["state"]),
                    _("yes") if p["provisional"] else "", _cell(p["employer"]),
                ])
    return buffer.getvalue()
