"""The public itinerary notice (行程轨迹公告) of a case: places and time windows, personal data removed.

What is published (decided here, rules in jingkong.tracing.rules.notice_place):

* no name, ID number, phone, age, sex, building, unit or room — the case is named by its case number only;
* home appears once, as the residential community (社区/小区) — never an address;
* a venue is named when it is a public place (shops, markets, restaurants, pharmacies, clinics, stations, hotels,
  gyms, schools, government offices, port terminals) or an employer with ≥ 50 registered workers; a smaller employer or
  other private venue appears as "a workplace/venue in <community>";
* transport: mode, number and carriage — never the seat; a private ride ("other" mode) only through a public label;
* free-text places are published only through a tracer-given public label; a tracer can leave any stay out
  (``publish``); drafted registry rows spanning the whole window and rows with inverted times are never published;
* times in Asia/Shanghai, widened to whole quarter hours.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db.models import Count

from jingkong.core import clock
from jingkong.geo.models import Region
from jingkong.people.models import Person
from jingkong.tracing import rules
from jingkong.tracing.models import Case, StaySource


def _communities(grid_codes: set[str]) -> dict[str, str]:
    """Community name by grid code (a grid's community code is its first 12 digits)."""
    names = dict(Region.objects.filter(code__in={g[:12] for g in grid_codes if g}).values_list("code", "name"))
    return {g: names.get(g[:12], "") for g in grid_codes}


def notice_for(case: Case) -> dict:
    tz = ZoneInfo(clock.local_time_zone())
    stays = list(case.stays.filter(publish=True, flag_inverted=False).exclude(source=StaySource.REGISTRY)
                 .select_related("venue__grid").order_by("start", "pk"))
    grid_codes = {case.region_code} | {s.venue.grid.code for s in stays if s.venue_id}
    community = _communities(grid_codes)
    venue_ids = {s.venue_id for s in stays if s.venue_id}
    workers = dict(Person.objects.filter(workplace_id__in=venue_ids).values_list("workplace_id")
                   .annotate(n=Count("id")).values_list("workplace_id", "n")) if venue_ids else {}
    items = []
    for s in stays:
        if s.kind == "home" and not s.public_label:
            continue  # home is stated once, as the residential community
        place = rules.notice_place(
            kind=s.kind, venue_name=s.venue.name if s.venue_id else "", venue_type=s.venue.type if s.venue_id else "",
            venue_workers=workers.get(s.venue_id, 0),
            community=community.get(s.venue.grid.code, "") if s.venue_id else "",
            public_label=s.public_label, transport_mode=s.transport_mode, transport_number=s.transport_number,
            carriage=s.carriage,
        )
        if place is None:
            continue
        start, end = rules.round_out(s.start, s.end)
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        items.append({
            "date": local_start.date().isoformat(),
            "start": local_start.isoformat(timespec="minutes"),
            "end": local_end.isoformat(timespec="minutes"),
            **place,
        })
    return {
        "case": case.ref,
        "classification": case.classification,
        "residence_community": community.get(case.region_code, ""),
        "generated_at": clock.now().astimezone(tz).isoformat(timespec="minutes"),
        "time_zone": str(tz),
        "items": items,
    }
