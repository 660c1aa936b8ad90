"""Key industries (重点行业, 按期按标准): periodic testing compliance per employer and industry.

A key-industry worker (``Person.industry``) must be sampled every ``key_industry_interval_days[industry]`` days (the
policy profile in force). From the worker's last sample (``Sample.sampled_at``, any round or none) at time ``now``:

* ``overdue`` — never sampled, or the last sample is older than the interval (``last < now - d``);
* ``due`` — the next test falls within a day (``now - d ≤ last < now - (d - 1)``): test today;
* ``compliant`` — otherwise.

Everything is one SQL query: the last sample per worker is a correlated subquery on the (person, sampled_at) index,
the thresholds per industry a CASE, the counts per employer conditional aggregates. Workers are scoped by their
residence grid, like every person list.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, CharField, Count, DateTimeField, F, OuterRef, Q, QuerySet, Subquery, Value, When

from jingkong.access.guard import Scope

STATUSES = ("overdue", "due", "compliant")


def intervals_for(scope: Scope, at: dt.datetime) -> tuple[dict[str, int], str]:
    """The testing interval (days) per industry from the profile in force for the scope, and the profile's label.
    No profile in force: PolicyNotActive (404); a profile without testing rules: ValidationFailed (422)."""
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import active_profile

    found = active_profile(region_code=scope.prefix or None, at=at)
    try:
        rules = found.rules.section("testing")
    except RulesIncomplete as exc:
        raise ValidationFailed(str(exc), code="policy_incomplete") from None
    return dict(rules.key_industry_interval_days.model_dump()), f"{found.profile.code} v{found.profile.version}"


def workers(*, scope: Scope, now: dt.datetime, intervals: dict[str, int], industry: str = "", employer: str | None = None,
            workplace: int | None = None, status: str = "") -> QuerySet:
    """Key-industry workers in the scope annotated with ``last_sampled``, ``next_due`` threshold and ``status``."""
    from jingkong.people.models import Person
    from jingkong.testing.models import Sample

    last = Subquery(Sample.objects.filter(person=OuterRef("pk")).order_by("-sampled_at").values("sampled_at")[:1],
                    output_field=DateTimeField())
    known = {k: v for k, v in intervals.items() if v}
    qs = Person.objects.filter(scope.q("grid__code")).exclude(industry="").filter(industry__in=list(known))
    if industry:
        qs = qs.filter(industry=industry)
    if employer is not None:
        from jingkong.testing.selectors import text_filter

        qs = qs.filter(employer=text_filter(employer, "employer"))
    if workplace is not None:
        if workplace and not 0 < workplace < 2**63:
            qs = qs.none()  # no such venue (and beyond what the database driver takes)
        else:
            qs = qs.filter(workplace_id=workplace or None)
    overdue_before = Case(*[When(industry=k, then=Value(now - dt.timedelta(days=d))) for k, d in known.items()],
                          output_field=DateTimeField())
    due_before = Case(*[When(industry=k, then=Value(now - dt.timedelta(days=d - 1))) for k, d in known.items()],
                      output_field=DateTimeField())
    qs = qs.annotate(last_sampled=last, overdue_before=overdue_before, due_before=due_before).annotate(
        status=Case(
            When(Q(last_sampled__isnull=True) | Q(last_sampled__lt=F("overdue_before")), then=Value("overdue")),
            When(last_sampled__lt=F("due_before"), then=Value("due")),
            default=Value("compliant"), output_field=CharField(),
        )
    )
    if status:
        qs = qs.filter(status=status)
    return qs


def compliance(*, scope: Scope, now: dt.datetime, intervals: dict[str, int], industry: str = "") -> list[dict]:
    """One row per (industry, employer, workplace): workers and how many are compliant, due, overdue."""
    qs = workers(scope=scope, now=now, intervals=intervals, industry=industry)
    rows = (qs.values("industry", "employer", "workplace_id", "workplace__name", "workplace__code")
            .annotate(workers_count=Count("id"),
                      compliant=Count("id", filter=Q(status="compliant")),
                      due=Count("id", filter=Q(status="due")),
                      overdue=Count("id", filter=Q(status="overdue")),
                      never_sampled=Count("id", filter=Q(last_sampled__isnull=True)))
            .order_by("industry", "employer", "workplace_id"))
    out = []
    for r in rows:
        out.append({
            "industry": r["industry"], "employer": r["employer"], "workplace_id": r["workplace_id"],
            "workplace": r["workplace__name"] or "", "workplace_code": r["workplace__code"] or "",
            "interval_days": intervals.get(r["industry"]), "workers": r["workers_count"],
            "compliant": r["compliant"], "due": r["due"], "overdue": r["overdue"],
            "never_sampled": r["never_sampled"],
            "compliance_rate": round(r["compliant"] / r["workers_count"], 4) if r["workers_count"] else None,
        })
    out.sort(key=lambda x: (-(x["overdue"] / x["workers"] if x["workers"] else 0), x["industry"], x["employer"]))
    return out
