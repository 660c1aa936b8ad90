"""Writes of the health-code feature: manual overrides and starting a full recompute.

A manual override (Perm.CODES_OVERRIDE) sets a person's colour whatever the rules say, with a reason (required), an
optional expiry, and can be revoked. It is audited on the person, announced (``codes.override_set`` /
``codes.override_revoked``) and the person's code is recomputed in the same transaction, so the override shows at
once (and disappears at once when revoked). An expired override stops counting at the next recompute of the person
(any event concerning them, or the full recompute).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.codes import engine
from jingkong.codes.models import CodeOverride, Colour
from jingkong.core import clock, jobs
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed

MAX_REASON = 1000
# Input bound, not a rule value: an override is a correction for days or weeks; a year-long one is a mistake, and dates
# at the edge of the calendar overflowed when stored or turned into a local date (a 500, then every recompute failed).
MAX_OVERRIDE_SPAN = dt.timedelta(days=366)


def _person_in_scope(scope: Scope, person_id: int):
    from jingkong.people.models import Person

    if not 0 < person_id < 2**63:
        raise NotFound(_("no such person"))
    person = Person.objects.select_related("grid").filter(pk=person_id).first()
    region = person.grid.code if person is not None and person.grid_id else ""
    if person is None or not scope.contains(region):
        raise NotFound(_("no such person"))
    return person, region


def _user(actor):
    return actor if getattr(actor, "pk", None) else None


@transaction.atomic
def override_create(*, actor, scope: Scope, person_id: int, colour: str, reason: str,
                    expires_at: dt.datetime | None = None, request=None) -> CodeOverride:
    """Set a person's colour by hand until ``expires_at`` (or until revoked)."""
    person, region = _person_in_scope(scope, person_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("reason: say why the code is set by hand"), extra={"field": "reason"})
    if "\x00" in reason:
        raise ValidationFailed(_("reason: contains a NUL character"), extra={"field": "reason"})
    if len(reason) > MAX_REASON:
        raise ValidationFailed(_("reason: at most %(n)d characters") % {"n": MAX_REASON}, extra={"field": "reason"})
    if colour not in Colour.values:
        raise ValidationFailed(_("colour: unknown colour"), extra={"field": "colour"})
    now = clock.now()
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationFailed(_("expires_at: give a time zone"), extra={"field": "expires_at"})
        if expires_at <= now:
            raise ValidationFailed(_("expires_at: the expiry is in the past"), extra={"field": "expires_at"})
        if expires_at - now > MAX_OVERRIDE_SPAN:
            raise ValidationFailed(_("expires_at: at most %(days)d days ahead") % {"days": MAX_OVERRIDE_SPAN.days},
                                   extra={"field": "expires_at"})
    row = CodeOverride.objects.create(person=person, colour=colour, reason=reason, region_code=region, starts_at=now,
                                      expires_at=expires_at, created_by=_user(actor))
    audit.record(actor=actor, action="codes.override", object_type="people.person", object_id=person.pk,
                 region_code=region, request=request,
                 detail={"override": row.pk, "colour": colour, "reason": reason[:200],
                         "expires_at": expires_at.isoformat() if expires_at else None})
    emit("codes.override_set", subject=person, region_code=region, actor=_user(actor),
         payload={"override_id": row.pk, "colour": colour,
                  "expires_at": expires_at.isoformat() if expires_at else None})
    engine.recompute_people([person.pk], at=now, actor=_user(actor))
    return row


@transaction.atomic
def override_revoke(*, actor, scope: Scope, override_id: int, reason: str = "", request=None) -> CodeOverride:
    if not 0 < override_id < 2**63:
        raise NotFound(_("no such override"))
    row = CodeOverride.objects.select_for_update().filter(pk=override_id).first()
    if row is None or not scope.contains(row.region_code):
        raise NotFound(_("no such override"))
    if row.revoked_at is not None:
        raise Conflict(_("the override was already revoked"), extra={"field": "override_id"})
    reason = (reason or "").replace("\x00", "").strip()[:MAX_REASON]
    now = clock.now()
    row.revoked_at, row.revoked_by = now, _user(actor)
    row.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(actor=actor, action="codes.override_revoke", object_type="people.person", object_id=row.person_id,
                 region_code=row.region_code, request=request, detail={"override": row.pk, "reason": reason[:200]})
    emit("codes.override_revoked", subject_type="people.person", subject_id=row.person_id,
         region_code=row.region_code, actor=_user(actor), payload={"override_id": row.pk})
    engine.recompute_people([row.person_id], at=now, actor=_user(actor))
    return row


def recompute_start(*, actor, scope: Scope):
    """Queue the full recompute (a background job; progress at /api/v1/core/jobs/{id})."""
    from jingkong.codes.jobs import RECOMPUTE

    return jobs.enqueue(RECOMPUTE, {}, actor=actor, region_code=scope.prefix or "")
