"""Health-code pages under /codes/: the board (counts by colour per region with drill-down and the recompute
button), the list of restricted people, and a person's code with its reasons, overrides and the override form.

Reads need CODES_VIEW, overrides CODES_OVERRIDE, the recompute CODES_RECOMPUTE; objects are looked up through the
scoped selectors (404 outside the user's region) and writes go through the services.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.codes import selectors, services
from jingkong.codes.models import Colour
from jingkong.codes.schemas_codes import override_out
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, NotFound

COLOUR_LABELS = dict(Colour.choices)


def _field(data, name: str, limit: int = 1000) -> str:
    return (data.get(name) or "").replace("\x00", "").strip()[:limit]


def _region(data) -> str:
    value = _field(data, "region", 15)
    return value if value.isdigit() else ""


def _colour(data) -> str:
    value = _field(data, "colour", 8)
    return value if value in Colour.values else ""


def _reasons(reasons: list[dict]) -> list[dict]:
    return [{**r, "colour_label": COLOUR_LABELS.get(r.get("colour"), r.get("colour")),
             "until_date": dt.date.fromisoformat(r["until"]) if r.get("until") else None} for r in reasons or []]


@require(Perm.CODES_VIEW)
def board(request):
    region = _region(request.GET)
    data = selectors.counts(request.scope, region)
    parent = None
    code = data["region"]["code"]
    if code and code != (request.scope.prefix or "") and len(code) > len(request.scope.prefix or ""):
        from jingkong.geo.models import Region

        parent = Region.objects.filter(code=code).values_list("parent__code", flat=True).first()
    return render(request, "codes/codes_board.html", {
        "data": data, "colours": [(c, COLOUR_LABELS[c]) for c in ("red", "orange", "yellow", "green")],
        "parent": parent, "can_recompute": request.jk_user.has_role_perm(Perm.CODES_RECOMPUTE),
    })


@require(Perm.CODES_VIEW)
def people_list(request):
    colour, region = _colour(request.GET), _region(request.GET)
    qs = selectors.people(request.scope, colour=colour, region=region)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    names = request.jk_user.has_role_perm(Perm.PERSON_VIEW)
    audit.record(actor=request.jk_user, action="person.list", object_type="people.person",
                 region_code=region or request.scope.prefix or "", request=request,
                 detail={"page": "codes.people", "colour": colour, "count": page.paginator.count})
    rows = [{"code": h, "reasons": _reasons(h.reasons)} for h in page.object_list]
    return render(request, "codes/codes_people.html", {
        "page": page, "rows": rows, "colour": colour, "region": region, "names": names,
        "colours": [(c, COLOUR_LABELS[c]) for c in ("red", "orange", "yellow", "green")],
    })


def _render_person(request, person_id: int, *, status: int = 200, form: dict | None = None, error: str = ""):
    person, code = selectors.person_code(request.scope, person_id)
    audit.record(actor=request.jk_user, action="person.view", object_type="people.person", object_id=person.pk,
                 region_code=code["region_code"], request=request, detail={"view": "health_code", "via": "page"})
    now = clock.now()
    return render(request, "codes/codes_person.html", {
        "person": person, "code": code, "reasons": _reasons(code["reasons"]),
        "colour_label": COLOUR_LABELS.get(code["colour"], code["colour"]),
        "names": request.jk_user.has_role_perm(Perm.PERSON_VIEW),
        "overrides": [override_out(o, now=now) for o in selectors.overrides_of(person)],
        "can_override": request.jk_user.has_role_perm(Perm.CODES_OVERRIDE),
        "colours": [(c, COLOUR_LABELS[c]) for c in ("red", "orange", "yellow", "green")],
        "form": form or {}, "error": error,
    }, status=status)


@require(Perm.CODES_VIEW)
def person_code(request, person_id: int):
    return _render_person(request, person_id)


def _expiry(value: str) -> dt.datetime | None:
    """A local date-time from the form (Asia/Shanghai) as an aware datetime; '' = no expiry."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
    return parsed


@require(Perm.CODES_OVERRIDE)
@require_POST
def override_create(request, person_id: int):
    form = {k: _field(request.POST, k) for k in ("colour", "reason", "expires_at")}
    try:
        try:
            expires = _expiry(form["expires_at"])
        except ValueError:
            raise ApplicationError(_("expires at: not a date and time")) from None
        services.override_create(actor=request.jk_user, scope=request.scope, person_id=person_id,
                                 colour=form["colour"], reason=form["reason"], expires_at=expires, request=request)
    except NotFound:
        raise
    except ApplicationError as exc:
        return _render_person(request, person_id, status=422, form=form, error=exc.message)
    messages.success(request, _("The code is set by hand."))
    return redirect(reverse("codes:codes_person", args=[person_id]))


@require(Perm.CODES_OVERRIDE)
@require_POST
def override_revoke(request, override_id: int):
    row = selectors.override_get(request.scope, override_id)
    try:
        services.override_revoke(actor=request.jk_user, scope=request.scope, override_id=override_id,
                                 reason=_field(request.POST, "reason"), request=request)
        messages.success(request, _("The override is revoked; the rules decide the colour again."))
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("codes:codes_person", args=[row.person_id]))


@require(Perm.CODES_RECOMPUTE)
@require_POST
def recompute(request):
    job = services.recompute_start(actor=request.jk_user, scope=request.scope)
    messages.success(request, _("Recompute started (job %(id)s).") % {"id": job.pk})
    return redirect(reverse("codes:codes_board"))
