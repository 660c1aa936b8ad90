"""Laboratories: who may see a lab, who may work for it, and the writes that manage labs and their technicians.

Visibility. A lab usually stands in one street but serves the whole district, so a lab is visible to a user when it
lies inside the user's region (a street officer sees the labs of their street) **or** when the lab's region contains
the user's region (a sampler in a street sees the district lab their tubes go to). Managing a lab (TESTING_PLAN)
needs the lab inside the user's region.

Working for a lab (receiving tubes, entering results): a **lab technician** may do so only for the labs whose
``technicians`` include them — checked in the services (:func:`ensure_can_operate`), not only in the API. Other roles
holding the permission (commander, administrator) may act for a lab standing inside their region (a district lab
receives every street's tubes: a street-level user working it would change other streets' people). The system
(``actor=None``: the command line) may act for any lab.

Reading a lab's tubes and results: its technicians see all of them; everyone else only the tubes of their region.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope, scope_of
from jingkong.access.roles import Role
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from jingkong.testing.models import Lab

EDITABLE = ("name", "capacity_per_hour", "target_hours", "active")


def lab_visible_q(scope: Scope) -> Q:
    """Labs inside the scope, or whose region contains the scope's region (the labs serving it)."""
    if scope.prefix is None:
        return Q(pk__in=[])
    if scope.prefix == "":
        return Q()
    ancestors = [scope.prefix[:i] for i in range(1, len(scope.prefix))]
    return Q(region_code__startswith=scope.prefix) | Q(region_code__in=ancestors)


def lab_list(*, scope: Scope, active: bool | None = None, actor=None) -> QuerySet[Lab]:
    q = lab_visible_q(scope)
    if is_technician(actor):
        q |= Q(technicians=actor)
    qs = Lab.objects.filter(q).select_related("region").distinct()
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("code")


def lab_get(*, scope: Scope, lab_id: int, actor=None) -> Lab:
    """A lab visible in the scope (or, for a lab technician, one of their labs); 404 otherwise."""
    q = lab_visible_q(scope)
    if is_technician(actor):
        q |= Q(technicians=actor)
    lab = Lab.objects.filter(q, pk=lab_id).select_related("region").distinct().first()
    if lab is None:
        raise NotFound(_("lab not found"))
    return lab


def lab_get_by_code(*, scope: Scope, code: str) -> Lab:
    lab = Lab.objects.filter(lab_visible_q(scope), code=code).select_related("region").first()
    if lab is None:
        raise NotFound(_("lab %(code)s not found") % {"code": code}, extra={"field": "lab"})
    return lab


def is_technician(user) -> bool:
    return getattr(user, "role", "") == Role.LAB_TECHNICIAN


def ensure_can_operate(actor, lab: Lab) -> None:
    """Refuse an actor who may not receive tubes or enter results for ``lab`` (see the module docstring)."""
    if actor is None or not getattr(actor, "pk", None):
        return  # the system (command line)
    if is_technician(actor):
        if not lab.technicians.filter(pk=actor.pk).exists():
            raise PermissionDenied(
                _("you are not a technician of lab %(code)s: only its technicians may receive tubes and enter its "
                  "results") % {"code": lab.code}, extra={"lab": lab.code})
        return
    scope = scope_of(actor)
    if not Lab.objects.filter(lab_visible_q(scope), pk=lab.pk).exists():
        raise NotFound(_("lab not found"))
    if not scope.contains(lab.region_code):
        # A lab serving the district takes tubes from every street: receiving them or entering their results acts on
        # other streets' people (control in place, retest tasks). Only its technicians and users whose region
        # contains the lab may.
        raise PermissionDenied(
            _("lab %(code)s stands outside your region: only its technicians, or users of a region containing it, "
              "may receive tubes and enter its results") % {"code": lab.code}, extra={"lab": lab.code})


def works_for(actor, lab: Lab) -> bool:
    """A lab technician listed by the lab (they see all of its tubes, whatever street they come from)."""
    return is_technician(actor) and lab.technicians.filter(pk=actor.pk).exists()


def operable_lab_ids(actor) -> list[int] | None:
    """The labs a lab technician works for (None: not restricted to a list)."""
    if is_technician(actor):
        return list(actor.labs.values_list("pk", flat=True))
    return None


# --- writes ------------------------------------------------------------------------------------------------------


def _no_nul(field: str, value) -> None:
    """PostgreSQL cannot store (or compare) text holding a NUL character: a clear 422 instead of a DataError."""
    if isinstance(value, str) and "\x00" in value:
        raise ValidationFailed(_("%(field)s: contains a NUL character") % {"field": field}, extra={"field": field})


def _technicians(scope: Scope, usernames: list[str]):
    from jingkong.access.models import User

    for name in usernames:
        _no_nul("technicians", name)
    names = sorted({u.strip() for u in usernames if u and u.strip()})
    users = list(User.objects.filter(username__in=names).select_related("region"))
    found = {u.username: u for u in users}
    problems = []
    for name in names:
        user = found.get(name)
        if user is None or not scope.contains(user.region.code if user.region_id else None):
            problems.append(_("%(name)s: no such user in your region") % {"name": name})
        elif user.role != Role.LAB_TECHNICIAN:
            problems.append(_("%(name)s is a %(role)s, not a lab technician") % {"name": name,
                                                                               "role": user.get_role_display()})
        elif not user.is_active:
            problems.append(_("%(name)s is deactivated") % {"name": name})
    if problems:
        raise ValidationFailed("; ".join(problems), extra={"field": "technicians", "problems": problems})
    return users


def _check_numbers(fields: dict) -> None:
    if "capacity_per_hour" in fields and not (1 <= int(fields["capacity_per_hour"]) <= 100_000):
        raise ValidationFailed(_("capacity must be between 1 and 100,000 tubes per hour"),
                               extra={"field": "capacity_per_hour"})
    if "target_hours" in fields and not (1 <= int(fields["target_hours"]) <= 168):
        raise ValidationFailed(_("the turnaround target must be between 1 and 168 hours"), extra={"field": "target_hours"})


def lab_create(*, actor, scope: Scope, code: str, name: str, region_code: str, capacity_per_hour: int = 500,
               target_hours: int = 12, active: bool = True, technicians: list[str] | None = None,
               request=None) -> Lab:
    from jingkong.geo.models import Region

    for field, value in (("code", code), ("name", name), ("region_code", region_code)):
        _no_nul(field, value)
    code = (code or "").strip()
    if not code or len(code) > 40:
        raise ValidationFailed(_("a lab code of 1 to 40 characters is required"), extra={"field": "code"})
    if not (name or "").strip():
        raise ValidationFailed(_("a lab name is required"), extra={"field": "name"})
    region = Region.objects.filter(code=region_code).first()
    if region is None or not scope.contains(region.code):
        raise NotFound(_("region %(code)s not found") % {"code": region_code}, extra={"field": "region_code"})
    _check_numbers({"capacity_per_hour": capacity_per_hour, "target_hours": target_hours})
    users = _technicians(scope, technicians or [])
    with transaction.atomic():
        if Lab.objects.filter(code=code).exists():
            raise Conflict(_("a lab with code %(code)s exists already") % {"code": code}, extra={"field": "code"})
        lab = Lab.objects.create(code=code, name=name.strip()[:128], region=region, region_code=region.code,
                                 capacity_per_hour=capacity_per_hour, target_hours=target_hours, active=active)
        if users:
            lab.technicians.set(users)
        _record(actor, lab, "testing.lab_created", {"technicians": [u.username for u in users]}, request)
    return lab


def lab_update(*, actor, scope: Scope, lab: Lab, technicians: list[str] | None = None, request=None,
               **fields) -> Lab:
    if not scope.contains(lab.region_code):
        raise NotFound(_("lab not found"))
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(_("these fields cannot be changed: %(f)s") % {"f": ", ".join(sorted(unknown))})
    _no_nul("name", fields.get("name"))
    if "name" in fields and not (fields["name"] or "").strip():
        raise ValidationFailed(_("a lab name is required"), extra={"field": "name"})
    _check_numbers(fields)
    users = _technicians(scope, technicians) if technicians is not None else None
    with transaction.atomic():
        changed = {}
        for key, value in fields.items():
            if getattr(lab, key) != value:
                changed[key] = [str(getattr(lab, key)), str(value)]
                setattr(lab, key, value)
        if changed:
            lab.save(update_fields=list(changed))
        detail: dict = {"changed": changed}
        if users is not None:
            before = sorted(lab.technicians.values_list("username", flat=True))
            after = sorted(u.username for u in users)
            if before != after:
                lab.technicians.set(users)
                detail["technicians"] = {"before": before, "after": after}
        if changed or "technicians" in detail:
            _record(actor, lab, "testing.lab_updated", detail, request)
    return lab


def _record(actor, lab: Lab, type_: str, detail: dict, request) -> None:
    emit(type_, subject=lab, region_code=lab.region_code, actor=actor, payload={"code": lab.code, **detail})
    if "technicians" in detail:  # who may enter results: an access decision, audited like user changes
        audit.record(actor=actor, action="lab.technicians", object_type="testing.lab", object_id=lab.pk,
                     region_code=lab.region_code, request=request, detail={"code": lab.code, **detail})
