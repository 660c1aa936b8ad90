"""Pages of rounds and sites under /testing/: the testing index (rounds), a new round, the round's page (settings,
areas, the estimate with its binding constraint, recommended pool sizes, door-to-door counts, the coverage block), the
site board, the door-to-door list and the key-industry compliance pages.

Writes go through the same services as the API (POST, CSRF, then redirect); every view is guarded by ``require``.
Times are shown in the platform's time zone (Django's ``TIME_ZONE``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, NotFound, ValidationFailed
from jingkong.geo.models import Region
from jingkong.people import idnumber
from jingkong.people.models import Industry
from jingkong.policy.selectors import PolicyNotActive
from jingkong.testing import industry, planning, selectors, services
from jingkong.testing.models import CampaignArea, CampaignStatus, Mode, SiteKind

COVERAGE_SECTION = "testing/campaign_coverage.html"  # optional: the coverage area's section of the round's page
BINDING_LABEL = {"samplers": gettext_lazy("Samplers"), "sites": gettext_lazy("Sites"), "tubes": gettext_lazy("Tubes"),
                 "labs": gettext_lazy("Labs")}
BINDING_TEXT = {
    "samplers": gettext_lazy("Sampling staff set the pace: more samplers (or fewer staff per desk) finish sooner."),
    "sites": gettext_lazy("Site capacity sets the pace: more sites or desks finish sooner."),
    "tubes": gettext_lazy("Not enough tubes: the round cannot be completed with the tubes in stock."),
    "labs": gettext_lazy("Lab capacity sets the pace: tubes wait at the labs; more lab capacity gives results sooner."),
}


def _tz() -> ZoneInfo:
    return ZoneInfo(clock.local_time_zone())


def _back(request, name: str, *args, query: dict | None = None) -> HttpResponseRedirect:
    url = reverse(name, args=args)
    return HttpResponseRedirect(url + ("?" + urlencode(query) if query else ""))


# The form fields' labels (as on the pages), to name a field in an error message instead of its identifier.
FIELD_LABELS = {
    "pool_size": gettext_lazy("Pool size"), "starts_at": gettext_lazy("Start (local time)"),
    "deadline": gettext_lazy("Deadline (local time)"), "tubes_available": gettext_lazy("Tubes in stock"),
    "transport_hours": gettext_lazy("Transport to the lab (h)"), "desk_rate": gettext_lazy("People per desk per hour"),
    "staff_per_desk": gettext_lazy("Staff per desk"), "prevalence": gettext_lazy("Expected positivity"),
    "days": gettext_lazy("Days"), "slot_minutes": gettext_lazy("Slot length (minutes)"),
    "utilisation": gettext_lazy("Booked share of capacity"), "lon": gettext_lazy("Longitude"),
    "lat": gettext_lazy("Latitude"), "desks": gettext_lazy("Desks"), "staff": gettext_lazy("Sampling staff"),
    "capacity_per_hour": gettext_lazy("Capacity (people/hour)"), "opens_at": gettext_lazy("Opens"),
    "closes_at": gettext_lazy("Closes"), "site": gettext_lazy("Site"), "workplace": gettext_lazy("Workplace"),
}


def _label(field: str) -> str:
    return str(FIELD_LABELS.get(field, field))


def _fail(request, exc: ApplicationError) -> None:
    messages.error(request, exc.message)


def _int(value, field: str, default=None):
    if value in (None, ""):
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationFailed(_("%(field)s: %(value)s is not a whole number") % {"field": _label(field),
                                                                                  "value": repr(value)},
                               extra={"field": field}) from None


def _float(value, field: str, default=None):
    if value in (None, ""):
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValidationFailed(_("%(field)s: %(value)s is not a number") % {"field": _label(field),
                                                                            "value": repr(value)},
                               extra={"field": field}) from None
    if not math.isfinite(number):
        raise ValidationFailed(_("%(field)s: must be a finite number") % {"field": _label(field)},
                               extra={"field": field})
    return number


def _local_datetime(value: str, field: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationFailed(_("%(field)s: enter a date and time such as 2022-01-02 08:00") % {
            "field": _label(field)}, extra={"field": field}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_tz())


def _time(value: str, field: str) -> dt.time:
    try:
        return dt.time.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationFailed(_("%(field)s: enter a time such as 07:00") % {"field": _label(field)},
                               extra={"field": field}) from None


def _regions_for(request, root_code: str, levels=("street", "community", "grid")) -> list[Region]:
    """Regions inside both the caller's scope and ``root_code`` (for the datalists of the forms)."""
    if request.scope.prefix is None:
        return []
    scope_prefix = request.scope.prefix
    prefix = scope_prefix if scope_prefix.startswith(root_code) else root_code
    if not request.scope.contains(prefix) and not prefix.startswith(scope_prefix):
        return []
    return list(Region.objects.filter(code__startswith=prefix, level__in=levels).only("code", "name", "level")
                .order_by("code")[:5000])


def _allowed_sizes(region_code: str | None) -> tuple[list[int], str, list[str]]:
    try:
        found, rules, zones = services.testing_rules(region_code)
        return list(rules.pool_sizes_allowed), services._profile_label(found), list(zones.types)
    except ValidationFailed:
        return [], "", []


def _pool_choices(sizes: list[int]) -> list[tuple[int, str]]:
    """(size, label) pairs for a pool-size select: "10-in-1", "single tube" ..."""
    return [(k, services.pool_label(k)) for k in sizes]


def _section_nav(request) -> list[dict]:
    """The testing section's pages without parameters, for the index's sub-navigation: this area's, and any page of
    the other areas (labs, coverage) whose view carries a ``nav_title``."""
    from jingkong.testing import urls_campaigns, urls_coverage, urls_labs

    out = []
    for module in (urls_campaigns, urls_labs, urls_coverage):
        for pattern in module.urlpatterns:
            title = getattr(pattern.callback, "nav_title", None)
            perm = getattr(pattern.callback, "jk_permission", None)
            if not title or "<" in str(pattern.pattern) or not pattern.name:
                continue
            if perm and not request.jk_user.has_role_perm(perm):
                continue
            out.append({"url": reverse(f"testing:{pattern.name}"), "title": title})
    return out


def _page(request, template: str, **context):
    user = request.jk_user
    context.setdefault("can_plan", user.has_role_perm(Perm.TESTING_PLAN))
    context.setdefault("can_see_persons", user.has_role_perm(Perm.PERSON_VIEW))
    context.setdefault("section_nav", _section_nav(request))
    return render(request, template, context)


# --- index and new round -------------------------------------------------------------------------------------------


@require(Perm.TESTING_VIEW)
def index(request):
    """The testing section: rounds in (or covering) the caller's area, newest first."""
    status = request.GET.get("status", "")
    if status not in CampaignStatus.values:
        status = ""
    campaigns = list(selectors.campaign_list(scope=request.scope, status=status, q=request.GET.get("q", ""))[:200])
    labels = dict(Industry.choices)
    for c in campaigns:  # Campaign.key_industry is free text in the model: the label comes from the people app
        c.key_industry_label = labels.get(c.key_industry, c.key_industry)
    return _page(request, "testing/index.html", campaigns=campaigns, status=status, q=request.GET.get("q", ""),
                 statuses=CampaignStatus.choices, now=clock.now())


def _round_form_context(request, values: dict, errors: dict | None = None) -> dict:
    region = request.jk_user.region
    root = region.code if region else ""
    allowed, profile, _zones = _allowed_sizes(root or None)
    return {"values": values, "errors": errors or {}, "regions": _regions_for(request, root, ("district", "street",
                                                                                              "community", "grid")),
            "modes": Mode.choices, "industries": [c for c in Industry.choices if c[0]], "pool_sizes": allowed,
            "pool_choices": _pool_choices(allowed), "policy_profile": profile}


@require(Perm.TESTING_PLAN)
def campaign_new(request):
    """Plan a round: region, window, default mode and pool size (from the sizes the policy in force allows)."""
    now_local = clock.now().astimezone(_tz())
    start = (now_local + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    region = request.jk_user.region
    values = {"name": "", "region_code": region.code if region else "", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
              "deadline": (start + dt.timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"), "mode": Mode.STREET,
              "pool_size": "", "key_industry": "", "note": ""}
    errors = {}
    if request.method == "POST":
        values.update({k: request.POST.get(k, "").strip() for k in values})
        try:
            campaign = services.campaign_create(
                actor=request.jk_user, scope=request.scope, name=values["name"], region_code=values["region_code"],
                starts_at=_local_datetime(values["starts_at"], "starts_at"),
                deadline=_local_datetime(values["deadline"], "deadline"), mode=values["mode"],
                pool_size=_int(values["pool_size"], "pool_size"), key_industry=values["key_industry"],
                note=values["note"])
        except ValidationFailed as exc:
            field = (exc.extra or {}).get("field")
            errors[field if field in values else "general"] = exc.message
        except ApplicationError as exc:
            errors["general"] = exc.message
        else:
            messages.success(request, _("Round %(code)s planned.") % {"code": campaign.code})
            return _back(request, "testing:campaign_detail", campaign.pk)
    return _page(request, "testing/campaign_new.html", **_round_form_context(request, values, errors))


# --- the round's page ----------------------------------------------------------------------------------------------


def _plan_params(request) -> dict:
    q = request.GET
    return {
        "tubes_available": _int(q.get("tubes_available"), "tubes_available"),
        "transport_hours": _float(q.get("transport_hours"), "transport_hours", 1.5),
        "desk_rate": _float(q.get("desk_rate"), "desk_rate", 120.0),
        "staff_per_desk": _float(q.get("staff_per_desk"), "staff_per_desk", 2.0),
        "prevalence": _float(q.get("prevalence"), "prevalence", 0.0),
    }


@require(Perm.TESTING_VIEW)
def campaign_detail(request, campaign_id: int):
    """The round: settings and actions, areas, the estimate and its binding constraint, recommended pool sizes per
    area from recent positivity, limited-mobility residents per building; the coverage section."""
    from jingkong.testing.api.campaigns import positivity_rows

    campaign = selectors.campaign_get(scope=request.scope, campaign_id=campaign_id)
    prefix = selectors.campaign_prefix(scope=request.scope, campaign=campaign)
    can_edit = request.scope.contains(campaign.region_code) and request.jk_user.has_role_perm(Perm.TESTING_PLAN)
    plan_error, estimate, params = "", None, {}
    try:
        params = _plan_params(request)
        if campaign.status != CampaignStatus.CLOSED:
            estimate = selectors.campaign_estimate(scope=request.scope, campaign=campaign, **params)
    except ValidationFailed as exc:
        plan_error, params = exc.message, {}
    except planning.PlanningError as exc:
        plan_error, params = str(exc), {}
    # Default: one level below the part of the round shown (a district's streets, a street's communities, ...).
    below = {6: "street", 9: "community"}.get(len(prefix), "grid")
    level = request.GET.get("level", below)
    if level not in ("street", "community", "grid"):
        level = below
    try:
        positivity = positivity_rows(request, campaign, level, _int(request.GET.get("days"), "days", 7))
    except ValidationFailed as exc:
        positivity = {"rows": [], "error": exc.message, "days": 7, "min_tested": 200}
    for row in positivity["rows"]:
        row["positivity_pct"] = None if row["positivity"] is None else 100 * row["positivity"]
        row["prevalence_pct"] = None if row["prevalence_used"] is None else 100 * row["prevalence_used"]
    allowed, profile, zone_types = _allowed_sizes(prefix)
    try:
        coverage_section = get_template(COVERAGE_SECTION) and COVERAGE_SECTION
    except TemplateDoesNotExist:
        coverage_section = None
    binding = estimate["binding"] if estimate else None
    return _page(
        request, "testing/campaign_detail.html", campaign=campaign, prefix=prefix, can_edit=can_edit,
        areas=selectors.area_list(scope=request.scope, campaign=campaign), estimate=estimate, plan_error=plan_error,
        plan_params={k: ("" if v is None else v) for k, v in params.items()},
        binding_text=BINDING_TEXT[binding] if binding else "", binding_label=BINDING_LABEL[binding] if binding else "",
        positivity=positivity, level=level, pool_sizes=allowed, pool_choices=_pool_choices(allowed),
        pool_label=services.pool_label(campaign.pool_size), policy_profile=profile,
        zone_types=[(z, services.zone_label(z)) for z in zone_types],
        modes=Mode.choices, sub_regions=_regions_for(request, campaign.region_code),
        door_counts=selectors.door_to_door_counts(scope=request.scope, campaign=campaign),
        coverage_section=coverage_section, is_open=campaign.status != CampaignStatus.CLOSED,
        key_industry_label=dict(Industry.choices).get(campaign.key_industry, campaign.key_industry),
    )


def _post_action(request, campaign_id: int, for_write: bool, action, success: str):
    campaign = selectors.campaign_get(scope=request.scope, campaign_id=campaign_id, for_write=for_write)
    try:
        result = action(campaign)
    except ApplicationError as exc:
        if isinstance(exc, NotFound) and exc.message == "campaign not found":
            raise
        _fail(request, exc)
    else:
        messages.success(request, success if not callable(success) else success(result))
    return campaign


@require(Perm.TESTING_PLAN)
@require_POST
def campaign_start(request, campaign_id: int):
    _post_action(request, campaign_id, True, lambda c: services.campaign_start(actor=request.jk_user,
                                                                               scope=request.scope, campaign=c),
                 _("The round is running."))
    return _back(request, "testing:campaign_detail", campaign_id)


@require(Perm.TESTING_PLAN)
@require_POST
def campaign_close(request, campaign_id: int):
    _post_action(request, campaign_id, True,
                 lambda c: services.campaign_close(actor=request.jk_user, scope=request.scope, campaign=c,
                                                   reason=request.POST.get("reason", "")),
                 _("The round is closed."))
    return _back(request, "testing:campaign_detail", campaign_id)


@require(Perm.TESTING_PLAN)
@require_POST
def campaign_update(request, campaign_id: int):
    """Change the round's name, deadline, default mode and pool size."""
    p = request.POST

    def change(c):
        changes = {"name": p.get("name") or None, "mode": p.get("mode") or None,
                   "pool_size": _int(p.get("pool_size"), "pool_size"), "note": p.get("note")}
        if p.get("deadline"):
            deadline = _local_datetime(p["deadline"], "deadline")
            # The form shows the deadline to the minute: the same minute sent back is no change (keeps its seconds).
            if deadline.astimezone(dt.UTC) != c.deadline.replace(second=0, microsecond=0):
                changes["deadline"] = deadline
        return services.campaign_update(actor=request.jk_user, scope=request.scope, campaign=c, **changes)

    _post_action(request, campaign_id, True, change, _("Round settings saved."))
    return _back(request, "testing:campaign_detail", campaign_id)


@require(Perm.TESTING_PLAN)
@require_POST
def campaign_area(request, campaign_id: int):
    """Set an area's mode and pool size (or the zone default)."""
    p = request.POST
    _post_action(request, campaign_id, False, lambda c: services.area_set(
        actor=request.jk_user, scope=request.scope, campaign=c, region_code=p.get("region_code", "").strip(),
        mode=p.get("mode") or None, pool_size=_int(p.get("pool_size"), "pool_size"),
        zone_type=p.get("zone_type") or None, one_tube_per_household=p.get("one_tube_per_household") == "on",
        reason=p.get("reason", "")), _("Area saved."))
    return _back(request, "testing:campaign_detail", campaign_id)


@require(Perm.TESTING_PLAN)
@require_POST
def campaign_area_delete(request, campaign_id: int, area_id: int):
    def remove(c):
        area = CampaignArea.objects.filter(pk=area_id, campaign=c).first()
        if area is None or not request.scope.contains(area.region_code):
            raise ValidationFailed(_("area not found"), extra={"field": "area"})
        services.area_delete(actor=request.jk_user, scope=request.scope, campaign=c, area=area)

    _post_action(request, campaign_id, False, remove, _("Area removed: the round's default applies there."))
    return _back(request, "testing:campaign_detail", campaign_id)


@require(Perm.TESTING_PLAN)
@require_POST
def campaign_assign(request, campaign_id: int):
    """Assign buildings to sites with time slots (your part of the round)."""
    p = request.POST

    def assign(c):
        return services.buildings_assign(
            actor=request.jk_user, scope=request.scope, campaign=c,
            slot_minutes=_int(p.get("slot_minutes"), "slot_minutes", 30),
            utilisation=_float(p.get("utilisation"), "utilisation", 0.85))

    def summary(result):
        text = _("%(buildings)s buildings (%(residents)s residents) assigned to sites with time slots.") % {
            "buildings": result["buildings"], "residents": result["residents"]}
        for kind, what in result["skipped"].items():  # the reason, in whole sentences (services gives it in English)
            n = what["buildings"]
            if not n:
                sentence = _("No building in the round's region.") if not result["buildings"] else ""
            elif kind == "door_to_door":
                sentence = ngettext("%(n)s building not assigned: no active door-to-door team.",
                                    "%(n)s buildings not assigned: no active door-to-door team.", n) % {"n": n}
            else:
                sentence = ngettext("%(n)s building not assigned: no active sampling site.",
                                    "%(n)s buildings not assigned: no active sampling site.", n) % {"n": n}
            if sentence:
                text += " " + sentence
        return text

    _post_action(request, campaign_id, False, assign, summary)
    return _back(request, "testing:site_board", campaign_id)


# --- site board ----------------------------------------------------------------------------------------------------


@require(Perm.TESTING_VIEW)
def site_board(request, campaign_id: int):
    """Sites of the round: capacity, assigned buildings and residents, slots, scans per hour, expected arrivals in the
    coming hour, open tubes; with ``?site=ID`` the site's buildings and their time slots."""
    campaign = selectors.campaign_get(scope=request.scope, campaign_id=campaign_id)
    rows = selectors.site_board(scope=request.scope, campaign=campaign)
    for row in rows:
        row["queue_warning"] = row["expected_next_hour"] > row["capacity_per_hour"] and row["active"]
    chosen = None
    site_id = _int(request.GET.get("site"), "site")
    if site_id:
        chosen = next((r for r in rows if r["id"] == site_id), None)
        if chosen is None:
            raise NotFound(_("sampling site not found"))
        chosen["slots"] = list(selectors.assignment_list(scope=request.scope, campaign=campaign, site_id=site_id)[:2000])
    totals = {k: sum(r[k] for r in rows) for k in ("buildings", "residents", "scans", "scans_last_hour", "open_tubes",
                                                     "capacity_per_hour")}
    region = request.jk_user.region
    return _page(request, "testing/site_board.html", campaign=campaign, rows=rows, chosen=chosen, totals=totals,
                 kinds=SiteKind.choices, grids=_regions_for(request, campaign.region_code, ("grid", "community")),
                 is_open=campaign.status != CampaignStatus.CLOSED,
                 default_region=region.code if region and region.code.startswith(campaign.region_code) else "")


@require(Perm.TESTING_PLAN)
@require_POST
def site_create(request, campaign_id: int):
    """Add a site (or door team) to the round, from the site board."""
    p = request.POST

    def create(c):
        return services.site_create(
            actor=request.jk_user, scope=request.scope, name=p.get("name", ""), region_code=p.get("region_code", ""),
            lon=_float(p.get("lon"), "lon"), lat=_float(p.get("lat"), "lat"), kind=p.get("kind", SiteKind.TEMPORARY),
            desks=_int(p.get("desks"), "desks", 1), staff=_int(p.get("staff"), "staff", 2),
            capacity_per_hour=_int(p.get("capacity_per_hour"), "capacity_per_hour", 120),
            opens_at=_time(p.get("opens_at") or "07:00", "opens_at"),
            closes_at=_time(p.get("closes_at") or "21:00", "closes_at"),
            campaign_id=c.pk if p.get("this_round_only") == "on" else None)

    _post_action(request, campaign_id, False, create, lambda s: _("Site %(code)s added.") % {"code": s.code})
    return _back(request, "testing:site_board", campaign_id)


@require(Perm.TESTING_PLAN)
@require_POST
def site_deactivate(request, campaign_id: int, site_id: int):
    site = selectors.site_get(scope=request.scope, site_id=site_id)

    def deactivate(c):
        return services.site_deactivate(actor=request.jk_user, scope=request.scope, site=site,
                                        reason=request.POST.get("reason", ""))

    _post_action(request, campaign_id, False, deactivate,
                 _("Site taken out of service: assign the buildings again to move its residents."))
    return _back(request, "testing:site_board", campaign_id)


@require(Perm.TESTING_VIEW)
def assignments_csv(request, campaign_id: int):
    """Buildings with their site and time slot as a spreadsheet (UTF-8 with BOM), for notifying residents."""
    import csv
    import io

    from django.http import HttpResponse

    campaign = selectors.campaign_get(scope=request.scope, campaign_id=campaign_id)
    rows = selectors.assignment_list(scope=request.scope, campaign=campaign, site_id=_int(request.GET.get("site"), "site"))
    zone = _tz()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Grid"), _("Building"), _("Address"), _("Residents"), _("Site"), _("Site name"),
                     _("Slot start"), _("Slot end"), _("Distance (m)")])
    for a in rows.iterator(chunk_size=5000):
        writer.writerow([a.region_code, a.building.code, a.building.address, a.residents, a.site.code, a.site.name,
                         a.slot_start.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                         a.slot_end.astimezone(zone).strftime("%Y-%m-%d %H:%M"), a.distance_m])
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    from urllib.parse import quote

    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", f"slots-{campaign.code}.csv")
    response["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                       f"filename*=UTF-8''{quote(f'slots-{campaign.code}.csv')}")
    return response


# --- door-to-door list ---------------------------------------------------------------------------------------------


@require(Perm.PERSON_VIEW)
def door_to_door(request, campaign_id: int):
    """The door team's printable list: bedridden and limited-mobility residents by building, unit and room (audited)."""
    campaign = selectors.campaign_get(scope=request.scope, campaign_id=campaign_id)
    only = request.GET.get("only_unsampled") == "1"
    building = request.GET.get("building", "").strip()
    persons = selectors.door_to_door_list(scope=request.scope, campaign=campaign, building=building,
                                          only_unsampled=only)
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=selectors.campaign_prefix(scope=request.scope, campaign=campaign), request=request,
                 detail={"list": "testing.door_to_door", "campaign": campaign.code, "building": building,
                         "only_unsampled": only, "count": len(persons), "page": "web"})
    show = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    groups: list[dict] = []
    for p in persons:
        code = p.building.code if p.building_id else ""
        if not groups or groups[-1]["building"] != code:
            groups.append({"building": code, "address": p.building.address if p.building_id else "",
                           "grid": p.grid, "persons": []})
        groups[-1]["persons"].append({"name": p.name, "id_masked": p.id_masked, "unit": p.unit, "room": p.room,
                                      "phone": p.phone if show else idnumber.phone_mask(p.phone),
                                      "sampled": p.sampled})
    return _page(request, "testing/door_to_door.html", campaign=campaign, groups=groups, only_unsampled=only,
                 building=building, count=len(persons))


# --- key industries ------------------------------------------------------------------------------------------------


@require(Perm.TESTING_VIEW)
def key_industries(request):
    """Key-industry periodic testing (按期按标准): per employer, workers compliant, due within a day and overdue."""
    chosen = request.GET.get("industry", "")
    if chosen not in Industry.values:
        chosen = ""
    now = clock.now()
    try:
        intervals, profile = industry.intervals_for(request.scope, now)
    except (PolicyNotActive, ValidationFailed) as exc:  # no profile in force, or one without testing rules
        return _page(request, "testing/key_industries.html", error=exc.message, rows=[], industries=[])
    rows = industry.compliance(scope=request.scope, now=now, intervals=intervals, industry=chosen)
    labels = dict(Industry.choices)
    for row in rows:
        row["industry_label"] = labels.get(row["industry"], row["industry"])
    totals = {k: sum(r[k] for r in rows) for k in ("workers", "compliant", "due", "overdue", "never_sampled")}
    return _page(request, "testing/key_industries.html", rows=rows, totals=totals, profile=profile, now=now,
                 industries=[(k, labels[k], intervals.get(k)) for k in labels if k], chosen=chosen)


@require(Perm.PERSON_VIEW)
def key_industry_workers(request):
    """The workers of one employer (and status): who to send for testing. Audited."""
    g = request.GET
    chosen = g.get("industry", "")
    status = g.get("status", "")
    if chosen not in Industry.values or status not in ("", *industry.STATUSES):
        raise ValidationFailed(_("unknown industry or status"))
    employer = g.get("employer")
    workplace = _int(g.get("workplace"), "workplace")
    now = clock.now()
    intervals, profile = industry.intervals_for(request.scope, now)
    from django.db.models import F

    qs = industry.workers(scope=request.scope, now=now, intervals=intervals, industry=chosen, employer=employer,
                          workplace=workplace, status=status).select_related("grid", "building", "workplace")
    items = list(qs.order_by(F("last_sampled").asc(nulls_first=True), "id")[:2000])
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=request.scope.prefix or "", request=request,
                 detail={"list": "testing.key_industry_workers", "industry": chosen, "employer": employer,
                         "workplace": workplace, "status": status, "count": len(items), "page": "web"})
    show = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    for p in items:
        p.phone_shown = p.phone if show else idnumber.phone_mask(p.phone)
    return _page(request, "testing/key_industry_workers.html", items=items, chosen=chosen, status=status,
                 employer=employer, profile=profile, now=now, industry_label=dict(Industry.choices).get(chosen, ""))


# Sub-navigation titles (lazy, translated per request).
index.nav_title = gettext_lazy("Rounds")
key_industries.nav_title = gettext_lazy("Key industries")
