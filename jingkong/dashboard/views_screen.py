"""The one-screen command view (一屏掌控) page.

The page itself carries no figures: it is a shell whose script reads the dashboard API (/api/v1/dashboard), the geo
API (the district's own polygons) and the zones GeoJSON, and listens to one server-sent event stream. The view only
decides what the script may ask for (the layers the user's role may read) and hands it every UI string already
translated, so that the page is in the user's language without any catalogue in JavaScript.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.geo.models import Level, Region
from jingkong.geo.selectors import region_ancestors

# Map layer → the data sources it draws and the permission each source needs (the contract's layer routes). A layer
# is offered when the user may read at least one of its sources other than the always-readable checkpoints.
LAYER_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "situation": (("regions", Perm.DASHBOARD_VIEW), ("cases", Perm.TRACING_VIEW), ("zones", Perm.ZONES_VIEW)),
    "testing": (("sites", Perm.TESTING_VIEW),),
    "routes": (("routes", Perm.ISOLATION_VIEW), ("facilities", Perm.ISOLATION_VIEW),
               ("checkpoints", Perm.DASHBOARD_VIEW)),
    "services": (("problems", Perm.COMMAND_VIEW), ("services", Perm.COMMAND_VIEW)),
}
# Tile order: situation and tracing on the left, operations on the right (anchors §5).
TILES_LEFT = ("cases_today", "community_share", "days_since_community_case", "cases_total", "zones", "contacts",
              "round", "retest")
TILES_RIGHT = ("transfer", "facilities", "services", "problems", "directives", "checkpoints")
# The permission that decides whether a layer is offered at all.
LAYER_GATE = {"situation": Perm.DASHBOARD_VIEW, "testing": Perm.TESTING_VIEW, "routes": Perm.ISOLATION_VIEW,
              "services": Perm.COMMAND_VIEW}


def allowed_layers(user) -> tuple[list[str], dict[str, bool]]:
    """The layers offered to ``user`` (in screen order) and, per data source, whether it may be fetched.

    Why here and not in the script: a layer the role may not read must not even appear as a switch, and the API's
    403 alone would leave an empty, confusing toggle.
    """
    layers = [name for name, perm in LAYER_GATE.items() if user.has_role_perm(perm)]
    sources = {source: name in layers and user.has_role_perm(perm)
               for name, pairs in LAYER_SOURCES.items() for source, perm in pairs}
    return layers, sources


def _choices(choices) -> dict[str, str]:
    return {str(value): str(label) for value, label in choices}


def choice_labels() -> dict:
    """The layers send status/category codes (``en_route``, ``supply_shortage``): their translated names, from the
    models' own choices, so a popup never shows a code."""
    from jingkong.codes.models import CheckpointKind
    from jingkong.command.models import ProblemCategory, ProblemStatus, ServiceCategory, ServiceStatus, Urgency
    from jingkong.isolation.models import FacilityKind, TransferStatus
    from jingkong.testing.models import SiteKind

    return {
        "run_status": _choices(TransferStatus.choices),
        "facility_kind": _choices(FacilityKind.choices),
        "site_kind": _choices(SiteKind.choices),
        # dashboard.layers.site_status
        "site_status": {"open": pgettext("sampling site", "open"), "queue": _("queue building up"), "closed": _("closed"),
                        "done": _("round target reached"), "out_of_service": _("out of service")},
        "problem_type": _choices(ProblemCategory.choices),
        "problem_status": _choices(ProblemStatus.choices),
        "urgency": _choices(Urgency.choices),
        "service_category": _choices(ServiceCategory.choices),
        "service_status": _choices(ServiceStatus.choices),
        "checkpoint_kind": _choices(CheckpointKind.choices),
    }


def screen_strings() -> dict:
    """Every UI string of the screen script, translated for the request's language (rendered as JSON)."""
    return {
        "choices": choice_labels(),
        "levels": {value: str(label) for value, label in Level.choices},
        "title": _("Outbreak command · one screen"),
        "no_data": _("no data"),
        "loading": _("Loading…"),
        "load_error": _("Could not load data."),
        "up": _("Up one level"),
        "as_of": _("as of"),
        "stale": _("stale"),
        "live": _("LIVE"),
        "offline": _("offline – reconnecting"),
        "connecting": _("connecting"),
        "not_located": _("not located further"),
        "layers": {
            "situation": _("Situation"),
            "testing": _("Testing sites"),
            "routes": _("Routes"),
            "services": _("Problems & services"),
        },
        "layer_title": _("Layers"),
        "metric_rate": _("7-day cases per 100k"),
        "metric_cases": _("7-day cases"),
        "legend_zero": _("none"),
        "legend_zones": _("Zones"),
        "zone_types": {"lockdown": _("lockdown zone"), "control": _("control zone"),
                       "prevention": _("prevention zone")},
        "zone_people": _("People"),
        "zone_due": _("Countdown ends"),
        "zone_ready": _("ready to lift or downgrade"),
        "zone_proposed": _("proposed"),
        "case_kinds": {"confirmed": _("confirmed"), "asymptomatic": _("asymptomatic")},
        "found_kinds": {"quarantine": _("found in quarantine"), "control": _("found in a controlled zone"),
                        "community": _("found in the community")},
        "site": {"kind": _("Kind"), "sampled": _("Sampled"), "target": _("Target"), "progress": _("Progress"), "queue": _("Queue"),
                 "capacity": _("Capacity per hour"), "status": _("Status")},
        "run": {"ref": _("Transfer run"), "vehicle": _("Vehicle"), "status": _("Status"), "people": _("People"), "eta": _("ETA")},
        "facility": {"kind": _("Kind"), "rooms": _("Rooms"), "occupied": _("Occupied"), "free": _("Free"), "occupancy": _("Occupancy")},
        "checkpoint": {"kind": _("Kind"), "crossings": _("Crossings today"), "denied": _("Denied today"),
                       "referred": _("Referred today")},
        "problem": {"type": _("Problem"), "urgency": _("Urgency"), "status": _("Status"), "overdue": _("overdue")},
        "service": {"category": _("Service request"), "priority": _("Priority (1 = first)"),
                    "status": _("Status")},
        "population": _("Population"),
        "tiles": {
            "cases_today": _("New cases today"),
            "community_share": _("Found in the community"),
            "days_since_community_case": _("Days since a community case"),
            "cases_total": _("Cases this wave"),
            "zones": _("Zones in force"),
            "round": _("Testing round coverage"),
            "retest": _("Pool positives awaiting retest"),
            "contacts": _("Contacts"),
            "transfer": _("Awaiting transfer"),
            "facilities": _("Free isolation rooms"),
            "services": _("Open service requests"),
            "problems": _("Open problems"),
            "directives": _("Directive tasks done"),
            "checkpoints": _("Checkpoint denials today"),
        },
        "confirmed": _("confirmed"),
        "asymptomatic": _("asymptomatic"),
        "in_quarantine": _("in quarantine"),
        "in_control": _("in controlled zones"),
        "in_community": _("in the community"),
        "vs_previous_day": _("vs previous day"),
        "up_by": _("up %(n)s on the previous day"),
        "down_by": _("down %(n)s on the previous day"),
        "unchanged": _("unchanged from the previous day"),
        "days": pgettext("unit", "days"),
        "lockdown_short": _("lockdown"),
        "control_short": _("control"),
        "prevention_short": _("prevention"),
        "persons": _("persons"),
        "sampled_of_target": _("sampled %(a)s of %(b)s"),
        "pending": _("results pending"),
        "pools": _("pools"),
        "located": _("located"),
        "transferred": _("transferred"),
        "identified": _("identified"),
        "isolated": _("isolated"),
        "identified_today": _("identified today %(n)s"),
        "en_route": _("en route"),
        "oldest_wait": _("oldest wait %(n)s min"),
        "occupancy": _("occupancy"),
        "reserve_days": _("reserve %(n)s days"),
        "overdue": _("overdue"),
        "of_tasks": _("of %(n)s tasks"),
        "crossings": _("crossings"),
        "referred": _("referred"),
        "clock_title": _("Five-stage clock"),
        # short names for the narrow column (the API's full label goes into the tooltip)
        "stage_short": {
            "testing": pgettext("five-stage clock", "Test"),
            "investigation": pgettext("five-stage clock", "Investigate"),
            "tracing": pgettext("five-stage clock", "Trace"),
            "grouping": pgettext("five-stage clock", "Group"),
            "transfer": pgettext("five-stage clock", "Transfer"),
            "isolation": pgettext("five-stage clock", "Isolate"),
        },
        "clock_no_completed": _("none completed yet"),
        "clock_completed": _("completed"),
        "clock_slowest_why": _("the highest time against its target, open cases' waiting time included"),
        "clock_median": _("median"),
        "clock_p90": _("90th percentile"),
        "clock_p90_short": _("P90"),
        "clock_target": _("target"),
        "clock_slowest": _("Slowest stage: %(stage)s"),
        "clock_slowest_tag": _("slowest"),
        "clock_backlog": _("backlog"),
        "hours": _("h"),
        "epi_title": _("Epidemic curve"),
        "epi_by_report": _("by report date"),
        "epi_by_onset": _("by onset date"),
        "epi_local": _("local"),
        "epi_imported": _("imported"),
        "epi_rt": _("R(t)"),
        "epi_rt_band": _("R(t) credible interval (95%)"),
        "epi_cases": _("cases"),
        "epi_incomplete": _("incomplete"),
        "epi_doubling": _("Doubling time %(n)s days"),
        "epi_halving": _("Halving time %(n)s days"),
        "epi_rt_note": _("R(t) describes transmission one to two weeks earlier."),
        "epi_rt_absent": _("R(t) needs ≥ %(n)s local cases in a %(w)s-day window."),
        "alerts_title": _("Alerts"),
        "alerts_none": _("No alerts."),
        "severity": {"1": _("level I"), "2": _("level II"), "3": _("level III"), "4": _("level IV")},
        "alert_kinds": {
            "case": _("new case"), "pool_positive": _("pool positive"), "stage_overdue": _("stage overdue"),
            "capacity": _("capacity running out"), "zone_ready": _("zone ready to lift"),
            "problem": _("problem raised"), "service_overdue": _("service overdue"),
            "checkpoint_denied": _("checkpoint denial"), "task_overdue": _("directive tasks overdue"),
            "tasks_escalated": _("tasks escalated"), "symptoms": _("symptoms under isolation"),
            "low_stock": _("low stock"), "zone_proposed": _("zone proposed"), "zone_approved": _("zone approved"),
            "zone_lifted": _("zone lifted"),
        },
        # contexts: these short words already have other meanings in the catalogue ("Open" = not yet done)
        "open_link": pgettext("alert link", "Open"),
        "tabs": {"clock": _("Five-stage clock"), "epi": _("Epidemic curve"), "alerts": _("Alerts")},
        "drill_hint": _("Click a street, community or grid to open it."),
    }


def _start_region(request) -> Region | None:
    """The region to open first: ``?region=`` when it lies inside the user's scope, else the user's own region."""
    wanted = (request.GET.get("region") or "").strip()
    if wanted and request.scope.contains(wanted):
        region = Region.objects.filter(code=wanted).first()
        if region is not None:
            return region
    return request.jk_user.region


def _region_ref(request, region: Region | None) -> dict | None:
    """``{code, name, level, path}`` with ``path`` root → region, only the part the user may open."""
    if region is None:
        return None
    path = [{"code": a["code"], "name": a["name"], "level": a["level"]}
            for a in region_ancestors(scope=request.scope, region=region) if a["in_scope"]]
    path.append({"code": region.code, "name": region.name, "level": region.level})
    return {"code": region.code, "name": region.name, "level": region.level, "path": path}


@require(Perm.DASHBOARD_VIEW)
def screen(request):
    """The one-screen command view: map with switchable layers, tiles, five-stage clock, epi curve, alert feed."""
    user = request.jk_user
    layers, sources = allowed_layers(user)
    root = user.region
    config = {
        "api": "/api/v1/dashboard",
        "geo_api": "/api/v1/geo",
        # the zones router is mounted at /zones/ and names its route /zones/geojson
        "stream": "/screen/stream",
        "page": request.path,
        "root": root.code if root else "",
        "start": _region_ref(request, _start_region(request)),
        "layers": layers,
        "sources": sources,
        "language": getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE),
        "time_zone": "Asia/Shanghai",
        "debounce_ms": 500,
        "incomplete_days": 3,
        # The platform's clock (a replayed outbreak runs in its own time): the header clock and the zone countdowns
        # run from the offset between this instant and the browser's clock, never from the browser's date alone.
        "now": clock.now().isoformat(),
    }
    strings = screen_strings()
    return render(request, "dashboard/screen.html", {
        "screen_config": config, "screen_strings": strings, "start": config["start"],
        "layers": [(name, strings["layers"][name]) for name in layers],
        "tiles_left": [(n, strings["tiles"][n]) for n in TILES_LEFT],
        "tiles_right": [(n, strings["tiles"][n]) for n in TILES_RIGHT],
    })
