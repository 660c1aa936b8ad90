"""Problems found (发现问题): reported from the field with a place on the map, routed to the responsible level by the
profile's ``directives.problem_routing`` rule, tracked to resolution with a deadline and a history
(:class:`ProblemUpdate`); overdue problems move up one level (:func:`jingkong.command.directives.escalate`).
"""

from __future__ import annotations

import functools
import time
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.command import rules
from jingkong.command.models import Problem, ProblemStatus, ProblemUpdate
from jingkong.command.tasks import directive_rules, store_photo
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed

_LOCATOR_TTL = 300.0


@functools.lru_cache(maxsize=1)
def _locator(bucket: int):
    from jingkong.geo.locator import grid_locator_from_db

    return grid_locator_from_db()


def locate(lon: float, lat: float) -> str:
    """The grid containing the point, or ``""`` (the stored grids, cached for a few minutes)."""
    from jingkong.geo.models import Region

    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return ""
    code = _locator(int(time.monotonic() // _LOCATOR_TTL)).codes_for([lon], [lat])[0]
    if code:
        return code
    # The cache may predate a newly imported grid: look again without it before giving up.
    from jingkong.geo.locator import grid_locator_from_db

    candidates = Region.objects.filter(level="grid", min_lon__lte=lon, max_lon__gte=lon, min_lat__lte=lat,
                                       max_lat__gte=lat).values_list("code", flat=True)
    if candidates:
        _locator.cache_clear()
        return grid_locator_from_db().codes_for([lon], [lat])[0] or ""
    return ""


def locator_reset() -> None:
    _locator.cache_clear()


def _ref(now) -> str:
    day = now.astimezone(ZoneInfo(clock.local_time_zone())).strftime("%Y%m%d")
    stem = f"WT-{day}-"
    last = Problem.objects.filter(ref__startswith=stem).order_by("-ref").values_list("ref", flat=True).first()
    return f"{stem}{(int(last.rsplit('-', 1)[1]) + 1 if last else 1):04d}"


def problem_report(*, actor, scope: Scope, category: str, urgency: str, description: str,
                   lon: float | None = None, lat: float | None = None, region_code: str = "", photo=None,
                   client_key: str = "", request=None) -> Problem:
    """Report a problem at a point (located to its grid) or in a region of the caller's scope. The same
    ``client_key`` from the same reporter answers the first problem (``problem.created`` is False then)."""
    from jingkong.geo.models import Region

    client_key = (client_key or "").strip()[:64]
    actor_id = getattr(actor, "pk", None)
    if client_key and actor_id:
        first = Problem.objects.filter(reported_by_id=actor_id, client_key=client_key).first()
        if first is not None:
            first.created = False
            return first

    if lon is not None and lat is not None:
        grid = locate(lon, lat)
        if not grid:
            raise ValidationFailed(_("this place is outside every grid of the base map"), extra={"field": "lon"})
        if region_code and not rules.nested(region_code, grid):
            raise ValidationFailed(_("the point lies in %(grid)s, not in %(region)s") % {"grid": grid, "region": region_code}, extra={"field": "region_code"})
        code = grid
    elif lon is not None or lat is not None:
        raise ValidationFailed(_("give both lon and lat, or neither"), extra={"field": "lat" if lat is None else "lon"})
    elif region_code:
        code = region_code
    else:
        raise ValidationFailed(_("give the place: lon and lat on the map, or a region"), extra={"field": "region_code"})
    scope.check(code, "region")
    if not Region.objects.filter(code=code).exists():
        raise NotFound(_("region not found"))
    now = clock.now()
    r = directive_rules(code, now)
    responsible = rules.problem_responsible(code, category=category, urgency=urgency, routing=r["problem_routing"])
    deadline = rules.problem_deadline(urgency, at=now, hours_by_urgency=r["problem_hours_by_urgency"])
    photo_path = store_photo(photo) if photo is not None else ""
    for attempt in range(3):
        try:
            with transaction.atomic():
                problem = Problem.objects.create(
                    ref=_ref(now), category=category, description=description, urgency=urgency, region_code=code,
                    responsible_code=responsible, lon=lon, lat=lat, photo=photo_path, status=ProblemStatus.OPEN,
                    deadline=deadline, reported_by=actor, reported_at=now,
                    client_key=client_key if actor_id else "")
                ProblemUpdate.objects.create(problem=problem, at=now, by=actor, status=problem.status,
                                             responsible_code=responsible, note="reported")
                audit.record(actor=actor, action="problem.report", object_type="command.problem",
                             object_id=problem.pk, region_code=code, request=request,
                             detail={"ref": problem.ref, "category": category, "urgency": urgency})
                emit("command.problem_reported", subject=problem, region_code=code, actor=actor,
                     payload={"ref": problem.ref, "category": category, "urgency": urgency,
                              "responsible": responsible, "deadline": deadline.isoformat()})
            problem.created = True
            return problem
        except IntegrityError:
            if client_key and actor_id:  # a concurrent resend with the same key won
                first = Problem.objects.filter(reported_by_id=actor_id, client_key=client_key).first()
                if first is not None:
                    first.created = False
                    return first
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def problem_update(*, actor, scope: Scope, problem: Problem, status: str = "", note: str = "",
                   responsible_code: str = "", resolution: str = "", request=None) -> ProblemUpdate:
    """Work a problem: change its status (resolving needs a resolution), route it to another level containing it,
    or add a note. Each call is one line of its history."""
    note, resolution = (note or "").strip(), (resolution or "").strip()
    with transaction.atomic():
        problem = Problem.objects.select_for_update().get(pk=problem.pk)
        now = clock.now()
        fields = []
        if responsible_code and responsible_code != problem.responsible_code:
            scope.check(responsible_code, "region")
            from jingkong.geo.models import Region

            if not Region.objects.filter(code=responsible_code).exists():  # a prefix that is no region
                raise NotFound(_("region not found"))
            if not problem.region_code.startswith(responsible_code):
                raise ValidationFailed(_("route the problem to its own region or a region containing it"),
                                       extra={"field": "responsible_code"})
            r = directive_rules(problem.region_code, now)
            problem.responsible_code = responsible_code
            problem.deadline = rules.problem_deadline(problem.urgency, at=now,
                                                      hours_by_urgency=r["problem_hours_by_urgency"])
            fields += ["responsible_code", "deadline"]
        if status and status != problem.status or status == ProblemStatus.IN_PROGRESS:
            try:
                rules.check_problem_transition(problem.status, status)
            except rules.RuleError as exc:
                raise ValidationFailed(str(exc), extra={"field": exc.field}) from None
            if status == ProblemStatus.RESOLVED and not resolution:
                raise ValidationFailed(_("say how the problem was resolved"), extra={"field": "resolution"})
            problem.status = status
            fields.append("status")
            if status in (ProblemStatus.RESOLVED, ProblemStatus.REJECTED):
                problem.resolved_at, problem.resolution = now, resolution or note
                fields += ["resolved_at", "resolution"]
            else:
                problem.resolved_at = None
                fields.append("resolved_at")
        if not fields and not note:
            raise ValidationFailed(_("nothing to record: give a status, a region or a note"), extra={"field": "note"})
        if fields:
            problem.save(update_fields=fields)
        update = ProblemUpdate.objects.create(problem=problem, at=now, by=actor, status=problem.status,
                                              responsible_code=problem.responsible_code,
                                              note=note or resolution)
        audit.record(actor=actor, action="problem.update", object_type="command.problem", object_id=problem.pk,
                     region_code=problem.region_code, request=request, detail={"fields": fields})
        emit("command.problem_updated", subject=problem, region_code=problem.region_code, actor=actor,
             payload={"ref": problem.ref, "status": problem.status, "responsible": problem.responsible_code,
                      "fields": fields})
    return update


def problem_add_photo(*, actor, problem: Problem, upload, request=None) -> Problem:
    """Attach the photo of a problem reported without one. A photo already there is evidence: it is never replaced
    (409)."""
    if problem.photo:
        raise Conflict(_("problem %(ref)s has a photo already") % {"ref": problem.ref}, extra={"field": "file"})
    path = store_photo(upload)
    with transaction.atomic():
        problem = Problem.objects.select_for_update().get(pk=problem.pk)
        if problem.photo:  # another upload won the race: keep the first
            raise Conflict(_("problem %(ref)s has a photo already") % {"ref": problem.ref}, extra={"field": "file"})
        problem.photo = path
        problem.save(update_fields=["photo"])
        ProblemUpdate.objects.create(problem=problem, at=clock.now(), by=actor, status=problem.status,
                                     responsible_code=problem.responsible_code, note="photo added")
        audit.record(actor=actor, action="problem.photo", object_type="command.problem", object_id=problem.pk,
                     region_code=problem.region_code, request=request)
        emit("command.problem_updated", subject=problem, region_code=problem.region_code, actor=actor,
             payload={"ref": problem.ref, "fields": ["photo"]})
    return problem
