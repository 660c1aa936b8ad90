"""Reads of the health-code feature, scoped by region (the person's grid code on the code row).

* :func:`person_code` — one person's code (computed on the fly, without storing, when the person has none yet).
* :func:`counts` — counts by colour for a region and each of its child regions (drill-down); the region's counts are
  the sum of its children's plus an ``elsewhere`` bucket (codes directly on the region or on a code that matches no
  child, e.g. people without a grid), so the figures always add up.
* :func:`people` — the people of a colour in the caller's region (masked ID numbers; names for PERSON_VIEW holders).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.codes.models import CodeOverride, Colour, HealthCode
from jingkong.core import clock
from jingkong.core.exceptions import NotFound

COLOURS = [c for c in Colour.values]


def person_get(scope: Scope, person_id: int):
    from jingkong.people.models import Person

    if not 0 < person_id < 2**63:
        raise NotFound(_("no such person"))
    person = Person.objects.select_related("grid").filter(pk=person_id).first()
    if person is None or not scope.contains(person.grid.code if person.grid_id else ""):
        raise NotFound(_("no such person"))
    return person


def person_code(scope: Scope, person_id: int) -> tuple[object, dict]:
    """``(person, code dict)``: the stored code, or the code the rules give now when none is stored yet."""
    person = person_get(scope, person_id)
    row = HealthCode.objects.filter(person_id=person.pk).first()
    if row is not None:
        return person, {"colour": row.colour, "rule_id": row.rule_id, "reasons": row.reasons,
                        "green_on": row.green_on, "overridden": row.overridden, "region_code": row.region_code,
                        "computed_at": row.computed_at, "changed_at": row.changed_at, "stored": True}
    from jingkong.codes import engine, facts

    at = clock.now()
    rows, _stats = engine.evaluate(at=at, people=[person.pk], policies=facts.Policies(at))
    _pid, colour, rule_id, reasons, green_on, region, _profile, overridden, _cites = rows[person.pk]
    return person, {"colour": colour, "rule_id": rule_id, "reasons": reasons, "green_on": green_on,
                    "overridden": overridden, "region_code": region, "computed_at": at, "changed_at": None,
                    "stored": False}


def overrides_of(person) -> QuerySet:
    return CodeOverride.objects.filter(person_id=person.pk).select_related("created_by", "revoked_by")


def override_get(scope: Scope, override_id: int) -> CodeOverride:
    if not 0 < override_id < 2**63:
        raise NotFound(_("no such override"))
    row = CodeOverride.objects.filter(pk=override_id).first()
    if row is None or not scope.contains(row.region_code):
        raise NotFound(_("no such override"))
    return row


def _root(scope: Scope, region: str):
    """The region to count (default: the caller's scope root; None = the whole platform)."""
    from jingkong.geo.models import Region

    code = region or scope.prefix or ""
    if scope.prefix is None or not scope.contains(code):
        raise NotFound(_("no such region"))
    if not code:
        return None
    found = Region.objects.filter(code=code).first()
    if found is None:
        raise NotFound(_("no such region"))
    return found


def _empty() -> dict:
    return {c: 0 for c in COLOURS} | {"total": 0}


def counts(scope: Scope, region: str = "") -> dict:
    """Counts by colour of ``region`` (default: the scope root) and of each child region."""
    from jingkong.geo.models import Region

    root = _root(scope, region)
    children = list(Region.objects.filter(parent=root).order_by("code").values("code", "name", "level")) \
        if root is not None else list(Region.objects.filter(parent__isnull=True).order_by("code")
                                      .values("code", "name", "level"))
    prefix = root.code if root is not None else ""
    by_child: dict[str, dict] = {c["code"]: _empty() for c in children}
    lengths = sorted({len(c) for c in by_child})
    elsewhere = _empty()
    total = _empty()
    with connection.cursor() as c:
        # One grouped scan: region codes cut at each child-code length (child codes of one parent share a length).
        cut = lengths[0] if len(lengths) == 1 else None
        if cut:
            c.execute("SELECT SUBSTR(region_code, 1, %s), colour, COUNT(*) FROM codes_healthcode "
                      "WHERE region_code LIKE %s GROUP BY 1, 2", [cut, _like(prefix)])
        else:
            c.execute("SELECT region_code, colour, COUNT(*) FROM codes_healthcode WHERE region_code LIKE %s "
                      "GROUP BY 1, 2", [_like(prefix)])
        rows = c.fetchall()
    for code, colour, n in rows:
        target = by_child.get(code) if cut else _match(code, by_child)
        bucket = target if target is not None else elsewhere
        bucket[colour] = bucket.get(colour, 0) + n
        bucket["total"] += n
        total[colour] = total.get(colour, 0) + n
        total["total"] += n
    return {
        "region": {"code": prefix, "name": root.name if root is not None else "", "level": root.level if root else ""},
        "counts": total,
        "children": [{**c, "counts": by_child[c["code"]]} for c in children],
        "elsewhere": elsewhere,
    }


def _like(prefix: str) -> str:
    return prefix.replace("\\", "").replace("%", "").replace("_", "") + "%"


def _match(code: str, by_child: dict[str, dict]) -> dict | None:
    for child, bucket in by_child.items():
        if code.startswith(child):
            return bucket
    return None


def people(scope: Scope, *, colour: str = "", region: str = "") -> QuerySet:
    """Codes of the given colour (default: every colour but green) in the scope, most restrictive first."""
    qs = HealthCode.objects.filter(scope.q("region_code")).select_related("person")
    if region:
        if not scope.contains(region):
            raise NotFound(_("no such region"))
        qs = qs.filter(region_code__startswith=region)
    if colour:
        qs = qs.filter(colour=colour)
    else:
        qs = qs.exclude(colour=Colour.GREEN)
    severity = Case(*[When(colour=c, then=Value(i)) for i, c in enumerate(("red", "orange", "yellow", "green"))],
                    default=Value(9), output_field=IntegerField())
    return qs.annotate(severity=severity).order_by("severity", "region_code", "person_id")
