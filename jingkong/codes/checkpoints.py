"""卡口 checkpoints and venue entry: every write of the area (checkpoints and their staff, passes, crossings, venue
entries, fever-clinic referrals). Reads live in jingkong/codes/selectors_checkpoints.py; the decisions themselves in
the pure jingkong/codes/checkpoint_rules.py.

* **Authority**: a checkpoint is region data (its ``region_code``): outside the caller's scope it is "not found"; a
  checkpoint officer verifies only at the checkpoints they staff (403 elsewhere), like samplers at their sites. Venue
  scans need the venue inside the caller's scope.
* **Verification** (online): the person (a signed token, verified now, or an ID number looked up on the register), the
  code on record (fresher than the token's), the zones in force they live in, their latest negative test, the origin's
  risk level and — for a vehicle — a pass (by number, else any valid pass for the plate). The decision and every reason
  are logged as a :class:`Crossing` in the same transaction; people arriving from outside the district are recorded as
  :class:`Arrival` rows (the code rules read them) and, when the origin is a risk area, their codes are recomputed.
* **Offline devices** decide from the signed token alone; their batches (≤ 500 crossings) are synced later: each item
  is verified again from its token at its own time, the device's decision (what happened at the barrier) is kept.
  ``client_id`` is unique: a record sent again returns the stored result (``replayed``) and writes nothing; the same id
  with different content is refused, naming the first field that differs.
* **Venue entry** (测温+亮码+戴口罩): a temperature at or above the profile's threshold creates a
  :class:`FeverReferral` and recomputes the person's code (yellow by the profile's ``fever.referred`` rule) in the same
  transaction; every recorded entry is also a check-in for tracing, appended to the check-in lake after commit
  (jingkong/codes/checkpoint_lake.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from jingkong.access import audit
from jingkong.access.guard import Scope
from jingkong.access.roles import Perm, Role
from jingkong.codes import checkpoint_rules as cr
from jingkong.codes.models import (
    Arrival,
    ArrivalSource,
    Checkpoint,
    CheckpointKind,
    Crossing,
    FeverReferral,
    HealthCode,
    Pass,
    PassKind,
    ReferralStatus,
    VenueEntry,
)
from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed

MAX_BATCH = 500
MAX_CLIENT_ID = 64
MAX_PASSENGERS = 60
MAX_TOKEN = 2048
MAX_TEXT = 255
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
TEMPERATURE_RANGE = (Decimal("30.0"), Decimal("45.0"))  # a reading outside is a device error, not a person
RECORDED, REPLAYED, REJECTED, NOT_RECORDED = "recorded", "replayed", "rejected", "not_recorded"
KINDS = {k.value for k in CheckpointKind}
PASS_KINDS = {k.value for k in PassKind}
_CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_PLATE_RE = re.compile(r"^[\u4e00-\u9fffA-Z0-9]{2,16}$")
_DIVISION_RE = re.compile(r"^[0-9]{2,12}$")
_CLIENT_ID_RE = re.compile(r"^[\x21-\x7e]{1,64}$")


class ItemRejected(Exception):
    """One item cannot be used: ``field`` and ``reason`` tell the device why."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _invalid(exc: ItemRejected) -> ValidationFailed:
    return ValidationFailed(f"{exc.field}: {exc.reason}", extra={"field": exc.field, "reason": exc.reason})


# --- policy ---------------------------------------------------------------------------------------------------------


def rules_for(region_code: str, at: dt.datetime):
    """The ``checkpoints`` rules of the profile in force for the region (Conflict when there are none)."""
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive, active_profile

    try:
        return active_profile(region_code=region_code or None, at=at).rules.section("checkpoints")
    except (PolicyNotActive, RulesIncomplete) as exc:
        raise Conflict(_("no policy profile with checkpoint rules is in force here: %(why)s") % {"why": exc},
                       code="policy_incomplete") from None


# --- parsing --------------------------------------------------------------------------------------------------------


def _text(raw: Mapping, key: str, *, limit: int = MAX_TEXT) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ItemRejected(key, _("must be text"))
    value = str(value).strip()
    if "\x00" in value:
        raise ItemRejected(key, _("contains a NUL character"))
    if len(value) > limit:
        raise ItemRejected(key, _("at most %(n)s characters") % {"n": limit})
    return value


def no_nul(name: str, value: str) -> str:
    if "\x00" in (value or ""):
        raise ValidationFailed(f"{name}: " + _("contains a NUL character"), extra={"field": name})
    return value


def parse_time(value, *, now: dt.datetime, field_name: str = "at") -> dt.datetime:
    """An ISO 8601 date-time (naive: local time) as aware UTC; empty means ``now``; not in the future."""
    from jingkong.testing.sampling import ScanRejected
    from jingkong.testing.sampling import parse_time as sampling_time

    try:
        moment = sampling_time(value, now=now, field_name=field_name)
    except ScanRejected as exc:
        raise ItemRejected(exc.field, exc.reason) from None
    return moment.replace(microsecond=0)


def normalize_plate(value: str) -> str:
    plate = re.sub(r"[\s·.\-]", "", value or "").upper()
    return plate


def parse_plate(raw: Mapping, key: str = "plate", *, required: bool = True) -> str:
    plate = normalize_plate(_text(raw, key, limit=32))
    if not plate:
        if required:
            raise ItemRejected(key, _("the plate is missing"))
        return ""
    if not _PLATE_RE.match(plate):
        raise ItemRejected(key, _("not a plate number (letters, digits and the province character)"))
    return plate


@dataclass
class Who:
    """A person as presented: a token or an ID number (exactly one)."""

    token: str = ""
    id_number: str = ""  # normalised
    id_hash: str = ""


def parse_who(raw, key: str) -> Who:
    """``{"token": …}`` or ``{"id_number": …}``, or a bare string (a token or an ID number, as a scanner reads it)."""
    from jingkong.codes.tokens import PREFIX
    from jingkong.people import idnumber

    if isinstance(raw, str):
        raw = {"token": raw} if raw.strip().startswith(PREFIX) else {"id_number": raw}
    if not isinstance(raw, Mapping):
        raise ItemRejected(key, _("give a token or an ID number"))
    try:
        token = _text(raw, "token", limit=MAX_TOKEN)
        number = _text(raw, "id_number", limit=32)
    except ItemRejected as exc:
        raise ItemRejected(f"{key}.{exc.field}", exc.reason) from None
    if token and number:
        raise ItemRejected(key, _("give either a token or an ID number, not both"))
    if number.startswith(PREFIX):
        token, number = number, ""
    if token:
        return Who(token=token)
    if not number:
        raise ItemRejected(key, _("the person is missing (give a token or an ID number)"))
    try:
        normalised = idnumber.validate(number, today=clock.today())
    except idnumber.IdNumberError as exc:
        raise ItemRejected(f"{key}.id_number", exc.reason) from None
    return Who(id_number=normalised, id_hash=idnumber.id_hash(normalised))


@dataclass
class CrossingIn:
    """A validated crossing request."""

    subject: str  # person | vehicle
    at: dt.datetime
    direction: str = ""
    client_id: str = ""
    origin_code: str = ""
    person: Who | None = None  # subject person
    plate: str = ""
    driver: Who | None = None
    passengers: list[Who] = dc_field(default_factory=list)
    pass_number: str = ""
    decision: str = ""  # offline: what the device decided
    given_id: bool = True
    risk: str | None = None  # the origin's risk level, once looked up
    risk_known: bool = False


def parse_crossing(raw: Mapping, *, now: dt.datetime, offline: bool = False) -> CrossingIn:
    if not isinstance(raw, Mapping):
        raise ItemRejected("item", _("must be an object"))
    client_id = _text(raw, "client_id", limit=MAX_CLIENT_ID)
    if client_id and not _CLIENT_ID_RE.match(client_id):
        raise ItemRejected("client_id", _("printable ASCII without spaces, at most 64 characters"))
    if offline and not client_id:
        raise ItemRejected("client_id", _("an offline record needs the device's record id"))
    at = parse_time(raw.get("at"), now=now)
    direction = _text(raw, "direction").lower()
    if direction not in cr.DIRECTIONS:
        raise ItemRejected("direction", _("use in, out or leave it empty"))
    origin = _text(raw, "origin_code")
    if origin and not _DIVISION_RE.match(origin):
        raise ItemRejected("origin_code", _("a division code is 2 to 12 digits"))
    subject = _text(raw, "subject").lower() or ("vehicle" if raw.get("plate") else "person")
    if subject not in ("person", "vehicle"):
        raise ItemRejected("subject", _("use person or vehicle"))
    decision = _text(raw, "decision").lower()
    if decision and decision not in cr.SEVERITY:
        raise ItemRejected("decision", _("use allow, refer or deny"))
    out = CrossingIn(subject=subject, at=at, direction=direction, client_id=client_id, origin_code=origin,
                     decision=decision if offline else "", given_id=bool(client_id))
    if subject == "person":
        person = raw.get("person")
        if person is None:
            person = {"token": raw.get("token"), "id_number": raw.get("id_number")}
        out.person = parse_who(person, "person")
        return out
    out.plate = parse_plate(raw)
    driver = raw.get("driver")
    if driver not in (None, "", {}):
        out.driver = parse_who(driver, "driver")
    passengers = raw.get("passengers") or []
    if not isinstance(passengers, list):
        raise ItemRejected("passengers", _("must be a list"))
    if len(passengers) > MAX_PASSENGERS:
        raise ItemRejected("passengers", _("at most %(n)s people") % {"n": MAX_PASSENGERS})
    out.passengers = [parse_who(p, f"passengers[{i}]") for i, p in enumerate(passengers)]
    out.pass_number = _text(raw, "pass_number", limit=40)
    return out


# --- facts ----------------------------------------------------------------------------------------------------------


@dataclass
class Person:
    """A person as identified at the crossing."""

    facts: cr.PersonFacts
    person_id: int | None = None
    region_code: str = ""  # the person's grid code
    id_masked: str = ""
    name_masked: str = ""


def identify(whos: Sequence[Who], *, at: dt.datetime, ats: Sequence[dt.datetime] | None = None,
             offline: bool = False) -> list[Person]:
    """Identify people: tokens verified at ``at`` (``ats``: each at its own time), ID numbers looked up. Online, the
    code on record, the zones in force they live in and their latest negative test complete the facts; offline, the
    token is all there is."""
    from jingkong.codes import tokens
    from jingkong.people.models import Person as PersonModel

    tokens_out: dict[int, object] = {}
    out: list[Person] = []
    for i, who in enumerate(whos):
        if who.token:
            try:
                verified = tokens.verify(who.token, at=ats[i] if ats else at)
            except tokens.InvalidToken as exc:
                out.append(Person(cr.PersonFacts(token_problem=exc.reason)))
                continue
            tokens_out[i] = verified
            out.append(Person(cr.PersonFacts(person_id=verified.person_id, colour=verified.colour),
                              verified.person_id, id_masked=verified.id_masked, name_masked=verified.name_masked))
        else:
            out.append(Person(cr.PersonFacts(found=False)))
    hashes = {who.id_hash for who in whos if who.id_hash}
    ids = {p.person_id for p in out if p.person_id}
    rows = {}
    if hashes or ids:
        from django.db.models import Q

        fields = ["pk", "id_hash", "id_masked", "name", "grid__code"]
        if not offline:  # the code on record and the latest negative test in the same query (one-to-one joins)
            fields += ["health_code__colour", "test_state__last_negative_sampled_at"]
        qs = list(PersonModel.objects.filter(Q(id_hash__in=hashes) | Q(pk__in=ids)).values_list(*fields))
        rows = {r[1]: r for r in qs}
        by_id = {r[0]: r for r in qs}
    else:
        by_id = {}
    for who, person in zip(whos, out, strict=True):
        if who.id_hash:
            row = rows.get(who.id_hash)
            if row is not None:
                person.person_id = row[0]
                person.id_masked = row[2]
                person.name_masked = tokens.mask_name(row[3])
                person.facts = cr.PersonFacts(person_id=row[0], found=True)
        if person.person_id and person.person_id in by_id:
            person.region_code = by_id[person.person_id][4] or ""
        elif person.person_id:  # a genuine token of a person no longer on the register
            person.person_id = None
            person.facts = cr.PersonFacts(found=False)
    known = sorted({p.person_id for p in out if p.person_id})
    if offline or not known:
        return out
    zones = _zones_of(known)
    for person in out:
        pid = person.person_id
        if not pid:
            continue
        row = by_id[pid]
        colour = row[5] or person.facts.colour  # the record is fresher than a token
        person.facts = cr.PersonFacts(person_id=pid, found=True, colour=colour, zones=tuple(zones.get(pid, ())),
                                      last_negative_at=row[6])
    return out


def _zones_of(person_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    from jingkong.zones.models import ZoneResident

    out: dict[int, list[tuple[int, str]]] = {}
    for pid, zone_id, zone_type in ZoneResident.objects.filter(person_id__in=person_ids).values_list(
            "person_id", "zone_id", "zone_type"):
        out.setdefault(pid, []).append((zone_id, zone_type))
    return out


def origin_risk(origin_code: str, at: dt.datetime) -> str | None:
    if not origin_code:
        return None
    from jingkong.zones.selectors import risk_level_of

    return risk_level_of(origin_code, at)


def pass_facts(number: str, plate: str, at: dt.datetime) -> tuple[cr.PassFacts | None, Pass | None]:
    """The pass shown (by number), else a pass valid now for the plate (the officer need not type it)."""
    if number:
        p = Pass.objects.filter(number=number).first()
        if p is None:
            return cr.PassFacts(number, problem="unknown"), None
        return cr.PassFacts(p.number, p.kind, pass_problem(p, plate, at)), p
    p = (Pass.objects.filter(plate=plate, revoked_at__isnull=True, valid_from__lte=at, valid_until__gt=at)
         .order_by("-valid_until").first()) if plate else None
    if p is None:
        return None, None
    return cr.PassFacts(p.number, p.kind, ""), p


def pass_problem(p: Pass, plate: str, at: dt.datetime) -> str:
    if p.revoked_at is not None and p.revoked_at <= at:
        return "revoked"
    if at < p.valid_from:
        return "not_yet_valid"
    if at >= p.valid_until:
        return "expired"
    if plate and normalize_plate(p.plate) != plate:
        return "plate_mismatch"
    return ""


# --- checkpoints ----------------------------------------------------------------------------------------------------


def checkpoint_get(*, scope: Scope, code: str) -> Checkpoint:
    """A checkpoint inside the scope (NotFound otherwise, existence not revealed)."""
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise NotFound(_("checkpoint not found"))
    cp = Checkpoint.objects.select_related("zone").filter(code=code).first()
    if cp is None or not scope.contains(cp.region_code):
        raise NotFound(_("checkpoint not found"))
    return cp


def checkpoint_for_device(*, actor, scope: Scope, code: str) -> Checkpoint:
    """A checkpoint the caller may verify at: in scope; a checkpoint officer must be on its staff."""
    cp = checkpoint_get(scope=scope, code=code)
    if getattr(actor, "role", None) == Role.CHECKPOINT_OFFICER and not cp.staff.filter(pk=actor.pk).exists():
        raise PermissionDenied(_("you are not on the staff of checkpoint %(code)s") % {"code": cp.code},
                               extra={"field": "checkpoint"})
    return cp


def _region(scope: Scope, code: str):
    from jingkong.geo.models import Region

    region = Region.objects.filter(code=code).first() if code and _DIVISION_RE.match(code) else None
    if region is None or not scope.contains(region.code):
        raise NotFound(_("region %(code)s not found") % {"code": code}, extra={"field": "region_code"})
    return region


def _zone(scope: Scope, zone_ref: str | None):
    from jingkong.zones.models import Zone

    if not zone_ref:
        return None
    zone = Zone.objects.filter(ref=zone_ref).first()
    if zone is None or not scope.contains(zone.region_code):
        raise NotFound(_("zone %(ref)s not found") % {"ref": zone_ref}, extra={"field": "zone"})
    return zone


def _staff(scope: Scope, usernames: Sequence[str]):
    from jingkong.access.models import User

    names = sorted({n for n in usernames})
    users = list(User.objects.select_related("region").filter(username__in=names, is_active=True))
    found = {u.username: u for u in users}
    for name in names:
        u = found.get(name)
        if u is None or u.region is None or not scope.contains(u.region.code):
            raise NotFound(_("user %(name)s not found") % {"name": name}, extra={"field": "staff"})
        if not u.has_role_perm(Perm.CHECKPOINT_VERIFY):
            raise ValidationFailed(_("user %(name)s may not verify at checkpoints") % {"name": name},
                                   extra={"field": "staff"})
    return users


def _check_lon_lat(lon: float, lat: float) -> None:
    if not (-180 <= lon <= 180):
        raise ValidationFailed(_("longitude must be between -180 and 180"), extra={"field": "lon"})
    if not (-90 <= lat <= 90):
        raise ValidationFailed(_("latitude must be between -90 and 90"), extra={"field": "lat"})


def checkpoint_create(*, actor, scope: Scope, code: str, name: str, kind: str, region_code: str, lon: float,
                      lat: float, zone: str | None = None, staff: Sequence[str] = (), active: bool = True,
                      request=None) -> Checkpoint:
    if not _CODE_RE.match(code or ""):
        raise ValidationFailed(_("a checkpoint code is letters, digits and - _ . (at most 40)"), extra={"field": "code"})
    if kind not in KINDS:
        raise ValidationFailed(_("unknown kind %(kind)s") % {"kind": kind}, extra={"field": "kind"})
    _check_lon_lat(lon, lat)
    region = _region(scope, region_code)
    zone_obj = _zone(scope, zone)
    users = _staff(scope, staff)
    now = clock.now()
    with transaction.atomic():
        if Checkpoint.objects.filter(code=code).exists():
            raise Conflict(_("checkpoint %(code)s exists already") % {"code": code}, extra={"field": "code"})
        cp = Checkpoint.objects.create(code=code, name=name, kind=kind, region_code=region.code, lon=lon, lat=lat,
                                       zone=zone_obj, active=active, created_at=now)
        cp.staff.set(users)
        audit.record(actor=actor, action="checkpoint.create", object_type="codes.checkpoint", object_id=cp.pk,
                     region_code=cp.region_code, request=request,
                     detail={"code": code, "kind": kind, "staff": [u.username for u in users]})
        emit("codes.checkpoint_created", subject=cp, region_code=cp.region_code, actor=actor, at=now,
             payload={"code": code, "kind": kind, "zone": zone_obj.ref if zone_obj else None})
    return cp


def checkpoint_update(*, actor, scope: Scope, code: str, changes: Mapping, request=None) -> Checkpoint:
    """Change name, kind, position, guarded zone, active, region (inside the scope) or staff (usernames)."""
    cp = checkpoint_get(scope=scope, code=code)
    now = clock.now()
    fields: dict = {}
    if "name" in changes and changes["name"] is not None:
        fields["name"] = changes["name"]
    if changes.get("kind") is not None:
        if changes["kind"] not in KINDS:
            raise ValidationFailed(_("unknown kind %(kind)s") % {"kind": changes["kind"]}, extra={"field": "kind"})
        fields["kind"] = changes["kind"]
    if changes.get("lon") is not None or changes.get("lat") is not None:
        lon = changes.get("lon") if changes.get("lon") is not None else cp.lon
        lat = changes.get("lat") if changes.get("lat") is not None else cp.lat
        _check_lon_lat(lon, lat)
        fields.update(lon=lon, lat=lat)
    if changes.get("region_code"):
        fields["region_code"] = _region(scope, changes["region_code"]).code
    if "zone" in changes:
        fields["zone"] = _zone(scope, changes["zone"])
    if changes.get("active") is not None:
        fields["active"] = bool(changes["active"])
    users = _staff(scope, changes["staff"]) if changes.get("staff") is not None else None
    with transaction.atomic():
        for key, value in fields.items():
            setattr(cp, key, value)
        if fields:
            cp.save(update_fields=list(fields))
        if users is not None:
            cp.staff.set(users)
        detail = {k: (v.ref if hasattr(v, "ref") else v) for k, v in fields.items()}
        if users is not None:
            detail["staff"] = [u.username for u in users]
        audit.record(actor=actor, action="checkpoint.update", object_type="codes.checkpoint", object_id=cp.pk,
                     region_code=cp.region_code, request=request, detail=detail)
        emit("codes.checkpoint_changed", subject=cp, region_code=cp.region_code, actor=actor, at=now,
             payload={"code": cp.code, "changed": sorted(detail)})
    return cp


# --- passes ---------------------------------------------------------------------------------------------------------


def pass_issue(*, actor, scope: Scope, kind: str, plate: str, holder: str, valid_from: dt.datetime | None,
               valid_until: dt.datetime, organisation: str = "", region_code: str = "", number: str = "",
               request=None) -> Pass:
    now = clock.now()
    if kind not in PASS_KINDS:
        raise ValidationFailed(_("unknown pass kind %(kind)s") % {"kind": kind}, extra={"field": "kind"})
    try:
        plate = parse_plate({"plate": plate})
    except ItemRejected as exc:
        raise _invalid(exc) from None
    region_code = region_code or (scope.prefix or "")
    region = _region(scope, region_code)
    valid_from = valid_from or now
    if valid_until <= valid_from:
        raise ValidationFailed(_("the pass must end after it starts"), extra={"field": "valid_until"})
    if valid_until - valid_from > dt.timedelta(days=366):
        raise ValidationFailed(_("a pass is valid for at most a year"), extra={"field": "valid_until"})
    if number and not _CODE_RE.match(number):
        raise ValidationFailed(_("a pass number is letters, digits and - _ . (at most 40)"), extra={"field": "number"})
    chosen = bool(number)
    stamp = clock.today().strftime("%Y%m%d")
    for attempt in range(20):
        if not chosen:
            # the next free number of the day (a number typed by hand earlier, or a pass issued at the same moment
            # by someone else, is skipped rather than refused)
            count = Pass.objects.filter(number__startswith=f"TX-{region.code}-{stamp}-").count()
            number = f"TX-{region.code}-{stamp}-{count + 1 + attempt:04d}"
        if Pass.objects.filter(number=number).exists():
            if chosen:
                raise Conflict(_("pass %(number)s exists already") % {"number": number}, extra={"field": "number"})
            continue
        try:
            with transaction.atomic():
                p = _pass_create(actor, request, number=number, kind=kind, plate=plate, holder=holder,
                                 organisation=organisation, region_code=region.code, valid_from=valid_from,
                                 valid_until=valid_until, now=now)
        except IntegrityError:
            if chosen:
                raise Conflict(_("pass %(number)s exists already") % {"number": number},
                               extra={"field": "number"}) from None
            continue
        return p
    raise Conflict(_("no free pass number: try again"), extra={"field": "number"})


def _pass_create(actor, request, *, number, kind, plate, holder, organisation, region_code, valid_from, valid_until,
                 now) -> Pass:
    p = Pass.objects.create(number=number, kind=kind, plate=plate, holder=holder, organisation=organisation,
                            region_code=region_code, valid_from=valid_from, valid_until=valid_until,
                            created_by=actor if getattr(actor, "pk", None) else None, created_at=now)
    audit.record(actor=actor, action="pass.issue", object_type="codes.pass", object_id=p.pk, region_code=p.region_code,
                 request=request, detail={"number": number, "plate": plate, "kind": kind})
    emit("codes.pass_issued", subject=p, region_code=p.region_code, actor=actor, at=now,
         payload={"number": number, "plate": plate, "kind": kind, "valid_until": valid_until.isoformat()})
    return p


def pass_get(*, scope: Scope, number: str) -> Pass:
    if not isinstance(number, str) or not _CODE_RE.match(number):
        raise NotFound(_("pass not found"))
    p = Pass.objects.filter(number=number).first()
    if p is None or not scope.contains(p.region_code):
        raise NotFound(_("pass not found"))
    return p


def pass_revoke(*, actor, scope: Scope, number: str, reason: str = "", request=None) -> Pass:
    now = clock.now()
    with transaction.atomic():
        p = pass_get(scope=scope, number=number)
        if p.revoked_at is None:
            p.revoked_at = now
            p.save(update_fields=["revoked_at"])
            audit.record(actor=actor, action="pass.revoke", object_type="codes.pass", object_id=p.pk,
                         region_code=p.region_code, request=request, detail={"number": p.number, "reason": reason})
            emit("codes.pass_revoked", subject=p, region_code=p.region_code, actor=actor, at=now,
                 payload={"number": p.number, "plate": p.plate, "reason": reason})
    return p


# --- crossings ------------------------------------------------------------------------------------------------------


@dataclass
class CrossingResult:
    index: int
    status: str
    client_id: str = ""
    decision: str = ""
    colour: str = ""
    reasons: list = dc_field(default_factory=list)
    crossing_id: int | None = None
    field: str = ""
    reason: str = ""
    people: list = dc_field(default_factory=list)  # [{who, id_masked, name_masked, colour}]
    pass_number: str | None = None
    arrivals: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


def derive_client_id(checkpoint_code: str, item: CrossingIn) -> str:
    key = "\0".join([checkpoint_code, item.at.isoformat(), item.subject, item.plate,
                     item.person.token or item.person.id_hash if item.person else ""])
    return "d:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _content(checkpoint_id: int, item: CrossingIn, person_id: int | None, passengers: int) -> dict:
    """The fields a re-sent record must repeat (compared in this order; the first that differs is named)."""
    return {"checkpoint": checkpoint_id, "at": item.at, "subject": item.subject, "direction": item.direction,
            "person": person_id, "plate": item.plate, "passengers": passengers, "origin_code": item.origin_code}


def _batch_content(checkpoint_id: int, item: CrossingIn) -> dict:
    """Two items of one batch compared before either is stored: the person (or driver) as shown, and the occupants."""
    def shown(who: Who | None) -> str:
        return (who.token or who.id_hash) if who is not None else ""

    content = _content(checkpoint_id, item, None, len(item.passengers) + (1 if item.driver else 0))
    content["person"] = shown(item.person if item.subject == "person" else item.driver)
    content["passengers"] = (content["passengers"], tuple(shown(p) for p in item.passengers))
    return content


def _stored_content(c: Crossing) -> dict:
    return {"checkpoint": c.checkpoint_id, "at": c.at.replace(microsecond=0), "subject": c.subject,
            "direction": c.direction, "person": c.person_id, "plate": c.plate, "passengers": c.passengers,
            "origin_code": c.origin_code}


def _differs(stored: dict, sent: dict) -> str:
    for key, value in sent.items():
        if stored.get(key) != value:
            return key
    return ""


def _replay(result: CrossingResult, c: Crossing) -> None:
    result.status = REPLAYED
    result.crossing_id = c.pk
    result.decision, result.colour, result.reasons = c.decision, c.colour, c.reasons


def _judge(cp: Checkpoint, item: CrossingIn, rules, *, offline: bool) -> tuple[cr.Verdict, list[Person], Pass | None]:
    """Identify everybody and decide (no writes)."""
    facts = cr.CheckpointFacts(kind=cp.kind, direction=item.direction, zone_id=cp.zone_id)
    risk = None if offline else _item_risk(item)
    if item.subject == "person":
        people = identify([item.person], at=item.at, offline=offline)
        verdict = cr.judge_person(people[0].facts, facts, rules, at=item.at, origin_risk=risk, offline=offline)
        return verdict, people, None
    whos = ([item.driver] if item.driver else []) + item.passengers
    people = identify(whos, at=item.at, offline=offline)
    driver = people[0] if item.driver else None
    passengers = people[1:] if item.driver else people
    pass_in, pass_row = pass_facts(item.pass_number, item.plate, item.at)
    verdict = cr.judge_vehicle(driver.facts if driver else None, [p.facts for p in passengers], facts, rules,
                               at=item.at, origin_risk=risk, pass_=pass_in, offline=offline)
    return verdict, people, pass_row


def _people_out(item: CrossingIn, people: list[Person]) -> list[dict]:
    labels = (["person"] if item.subject == "person" else
              (["driver"] if item.driver else []) + [f"passenger {i}" for i in range(1, len(item.passengers) + 1)])
    return [{"who": label, "id_masked": p.id_masked, "name_masked": p.name_masked, "colour": p.facts.colour or "",
             "found": p.facts.found and not p.facts.token_problem} for label, p in zip(labels, people, strict=True)]


def _arrivals(cp: Checkpoint, item: CrossingIn, people: list[Person], decision: str, now) -> list[Arrival]:
    """Inbound people from outside the checkpoint's district who were not turned back."""
    if item.direction != cr.IN or not item.origin_code or decision == cr.DENY:
        return []
    if item.origin_code.startswith(cp.region_code[:6]):
        return []
    rows, seen = [], set()
    for p in people:
        if p.person_id and p.person_id not in seen:
            seen.add(p.person_id)
            rows.append(Arrival(person_id=p.person_id, origin_code=item.origin_code, arrived_at=item.at,
                                source=ArrivalSource.CHECKPOINT, region_code=p.region_code or cp.region_code,
                                created_at=now))
    return rows


def _item_risk(item: CrossingIn) -> str | None:
    """The origin's risk level at the crossing time (looked up once per record)."""
    if not item.risk_known:
        item.risk, item.risk_known = origin_risk(item.origin_code, item.at), True
    return item.risk


def _write_arrivals(rows: list[Arrival], at: dt.datetime, item: CrossingIn) -> int:
    """Insert arrivals (an arrival already recorded is kept once) and recompute the codes of those from a risk area."""
    if not rows:
        return 0
    before = set(Arrival.objects.filter(person_id__in=[r.person_id for r in rows], arrived_at__in=[r.arrived_at for r in rows])
                 .values_list("person_id", "origin_code", "arrived_at"))
    Arrival.objects.bulk_create(rows, ignore_conflicts=True)
    new = [r for r in rows if (r.person_id, r.origin_code, r.arrived_at) not in before]
    risky = sorted({r.person_id for r in new}) if new and _item_risk(item) else []
    if risky:
        from jingkong.codes import engine

        engine.recompute_people(risky, at=at)
    return len(new)


def _audit_people(actor, request, cp: Checkpoint, people: list[Person], decision: str) -> None:
    items = [(p.person_id, p.region_code or cp.region_code) for p in people if p.person_id]
    if items:
        audit.record_many(actor=actor, action="person.verify", object_type="people.person", items=items,
                          request=request, detail={"checkpoint": cp.code, "decision": decision})


def verify_and_log(*, actor, scope: Scope, checkpoint_code: str, raw: Mapping, request=None) -> tuple[CrossingResult, bool]:
    """Verify a person or a vehicle at a checkpoint and log the crossing, in one call. Returns (result, created):
    a record re-sent with the same ``client_id`` returns the stored result (created False)."""
    now = clock.now()
    cp = checkpoint_for_device(actor=actor, scope=scope, code=checkpoint_code)
    if not cp.active:
        raise ValidationFailed(_("checkpoint %(code)s is not in service") % {"code": cp.code},
                               extra={"field": "checkpoint"})
    try:
        item = parse_crossing(raw, now=now)
    except ItemRejected as exc:
        raise _invalid(exc) from None
    result = CrossingResult(index=0, status=RECORDED, client_id=item.client_id)
    # No look-up of the client_id first (one query less on every call): a record sent again fails the unique
    # client_id on insert and is answered from the stored crossing (_log).
    rules = rules_for(cp.region_code, item.at)
    verdict, people, pass_row = _judge(cp, item, rules, offline=False)
    if not item.client_id:
        item.client_id = derive_client_id(cp.code, item)
        result.client_id = item.client_id
    created = _log(actor, request, cp, item, verdict, people, pass_row, result, now=now, offline=False)
    return result, created


def _answer_existing(result: CrossingResult, existing: Crossing, cp: Checkpoint, item: CrossingIn) -> CrossingResult:
    """A record sent again: the stored result, or a Conflict naming the first field that differs."""
    person_id = None
    who = item.person if item.subject == "person" else item.driver  # a vehicle's crossing names its driver
    if who is not None:
        person_id = identify([who], at=item.at, offline=True)[0].person_id
    passengers = len(item.passengers) + (1 if item.driver else 0) if item.subject == "vehicle" else 0
    bad = _differs(_stored_content(existing), _content(cp.pk, item, person_id, passengers))
    if bad:
        raise Conflict(_("client_id %(id)s was already used for another crossing (%(field)s differs)") % {
            "id": item.client_id, "field": bad}, extra={"field": bad, "client_id": item.client_id})
    _replay(result, existing)
    return result


def _log(actor, request, cp: Checkpoint, item: CrossingIn, verdict: cr.Verdict, people: list[Person],
         pass_row: Pass | None, result: CrossingResult, *, now, offline: bool) -> bool:
    decision = verdict.decision
    reasons = verdict.reasons_dicts()
    if offline and item.decision and item.decision != decision:
        reasons.append({"code": "device_decision", "verdict": item.decision,
                        "text": _("the device decided %(device)s (from the token alone: %(server)s)") % {
                            "device": item.decision, "server": decision}})
        decision = item.decision
    person_id = people[0].person_id if item.subject == "person" else (
        people[0].person_id if item.driver and people else None)
    passengers = len(people) if item.subject == "vehicle" else 0
    try:
        with transaction.atomic():
            c = Crossing.objects.create(
                client_id=item.client_id, checkpoint=cp, region_code=cp.region_code, at=item.at,
                direction=item.direction, subject=item.subject, person_id=person_id, plate=item.plate,
                passengers=passengers, pass_used=pass_row, origin_code=item.origin_code, colour=verdict.colour,
                decision=decision, reasons=reasons, offline=offline,
                recorded_by=actor if getattr(actor, "pk", None) else None, received_at=now)
            result.arrivals = _write_arrivals(_arrivals(cp, item, people, decision, now), now, item)
            _audit_people(actor, request, cp, people, decision)
            if not offline:
                emit("codes.crossing_recorded", subject=c, region_code=cp.region_code, actor=actor, at=now,
                     payload={"checkpoint": cp.code, "decision": decision, "subject": item.subject,
                              "colour": verdict.colour, "arrivals": result.arrivals})
    except IntegrityError:
        existing = Crossing.objects.filter(client_id=item.client_id).first()
        if existing is None:
            raise
        _answer_existing(result, existing, cp, item)
        return False
    result.crossing_id = c.pk
    result.decision, result.colour, result.reasons = decision, verdict.colour, reasons
    result.people = _people_out(item, people)
    result.pass_number = pass_row.number if pass_row is not None else None
    return True


@dataclass
class SyncOutcome:
    results: list[CrossingResult]
    counts: dict

    def as_dict(self) -> dict:
        return {"counts": self.counts, "results": [r.as_dict() for r in self.results]}


def crossings_sync(*, actor, scope: Scope, checkpoint_code: str, items: Sequence, device: str = "",
                   request=None) -> SyncOutcome:
    """Store crossings decided offline (≤ 500): each item gets a result — recorded, replayed (already stored, nothing
    written) or rejected (field, reason); bad items never spoil the others."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ValidationFailed(_("crossings: must be a list"), extra={"field": "crossings"})
    if len(items) > MAX_BATCH:
        raise ValidationFailed(_("crossings: at most %(n)s per batch") % {"n": MAX_BATCH}, extra={"field": "crossings"})
    no_nul("device", device)
    now = clock.now()
    cp = checkpoint_for_device(actor=actor, scope=scope, code=checkpoint_code)
    results: list[CrossingResult] = []
    parsed: list[tuple[int, CrossingIn]] = []
    for i, raw in enumerate(items):
        r = CrossingResult(index=i, status=RECORDED)
        results.append(r)
        try:
            item = parse_crossing(raw, now=now, offline=True)
        except ItemRejected as exc:
            r.status, r.field, r.reason = REJECTED, exc.field, exc.reason
            if isinstance(raw, Mapping) and isinstance(raw.get("client_id"), str):
                r.client_id = raw["client_id"][:MAX_CLIENT_ID].replace("\x00", "")
            continue
        r.client_id = item.client_id
        if not item.decision and not _has_token(item):
            r.status, r.field = REJECTED, "decision"
            r.reason = _("without a scanned code, the device's decision is required")
            continue
        parsed.append((i, item))
    existing = {c.client_id: c for c in Crossing.objects.filter(client_id__in=[it.client_id for _, it in parsed])}
    seen: dict[str, tuple[int, CrossingIn]] = {}
    rules = rules_for(cp.region_code, now) if parsed else None
    written = 0
    # One transaction for the batch (a savepoint per crossing): one commit instead of one per record. Records are
    # written in client_id order, so two devices sending overlapping batches lock them in the same order.
    with transaction.atomic():
        for i, item in sorted(parsed, key=lambda pair: (pair[1].client_id, pair[0])):
            r = results[i]
            stored = existing.get(item.client_id)
            if stored is not None:
                try:
                    _answer_existing(r, stored, cp, item)
                except Conflict as exc:
                    r.status, r.field, r.reason = REJECTED, exc.extra.get("field", "client_id"), exc.message
                continue
            earlier = seen.get(item.client_id)
            if earlier is not None:
                bad = _differs(_batch_content(cp.pk, earlier[1]), _batch_content(cp.pk, item))
                if bad:
                    r.status, r.field = REJECTED, bad
                    r.reason = _("repeats the record id of item %(index)s with another %(field)s") % {
                        "index": earlier[0], "field": bad}
                else:
                    first = results[earlier[0]]
                    r.status, r.crossing_id, r.decision, r.colour, r.reasons = (
                        REPLAYED, first.crossing_id, first.decision, first.colour, first.reasons)
                continue
            seen[item.client_id] = (i, item)
            verdict, people, pass_row = _judge(cp, item, rules, offline=True)
            try:
                if _log(actor, request, cp, item, verdict, people, pass_row, r, now=now, offline=True):
                    written += 1
            except Conflict as exc:  # another device's request stored this id a moment ago, with other content
                r.status, r.field, r.reason = REJECTED, exc.extra.get("field", "client_id"), exc.message
        counts = {RECORDED: 0, REPLAYED: 0, REJECTED: 0}
        for r in results:
            counts[r.status] += 1
        if written:
            emit("codes.crossings_synced", subject=cp, region_code=cp.region_code, actor=actor, at=now,
                 payload={"checkpoint": cp.code, "device": device[:64], **counts})
    return SyncOutcome(results, counts)


def _has_token(item: CrossingIn) -> bool:
    if item.subject == "person":
        return bool(item.person and item.person.token)
    return bool(item.driver and item.driver.token)


# --- venue entry ----------------------------------------------------------------------------------------------------


def venue_get(*, scope: Scope, code: str):
    from jingkong.geo.models import Venue

    if not isinstance(code, str) or not code or len(code) > 40 or "\x00" in code:
        raise NotFound(_("venue not found"))
    venue = Venue.objects.select_related("grid").filter(code=code).first()
    if venue is None or not scope.contains(venue.grid.code):
        raise NotFound(_("venue not found"))
    return venue


@dataclass
class EntryIn:
    who: Who
    at: dt.datetime
    temperature: Decimal | None
    masked: bool | None
    client_id: str = ""


def parse_temperature(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ItemRejected("temperature", _("a temperature in °C, e.g. 36.6"))
    try:
        t = Decimal(str(value).strip())
    except InvalidOperation:
        raise ItemRejected("temperature", _("a temperature in °C, e.g. 36.6")) from None
    if not t.is_finite() or not TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]:
        raise ItemRejected("temperature", _("a body temperature is between %(lo)s and %(hi)s °C") % {
            "lo": TEMPERATURE_RANGE[0], "hi": TEMPERATURE_RANGE[1]})
    return t.quantize(Decimal("0.1"))


def parse_entry(raw: Mapping, *, now: dt.datetime, offline: bool = False) -> EntryIn:
    if not isinstance(raw, Mapping):
        raise ItemRejected("item", _("must be an object"))
    client_id = _text(raw, "client_id", limit=MAX_CLIENT_ID)
    if client_id and not _CLIENT_ID_RE.match(client_id):
        raise ItemRejected("client_id", _("printable ASCII without spaces, at most 64 characters"))
    if offline and not client_id:
        raise ItemRejected("client_id", _("an offline record needs the device's record id"))
    person = raw.get("person")
    if person is None:
        person = {"token": raw.get("token"), "id_number": raw.get("id_number")}
    who = parse_who(person, "person")
    temperature = parse_temperature(raw.get("temperature"))
    masked = raw.get("masked")
    if masked is not None and not isinstance(masked, bool):
        raise ItemRejected("masked", _("true or false"))
    at = parse_time(raw.get("at"), now=now)
    return EntryIn(who=who, at=at, temperature=temperature, masked=masked, client_id=client_id)


@dataclass
class EntryResult:
    index: int
    status: str
    client_id: str = ""
    decision: str = ""
    colour: str = ""
    reasons: list = dc_field(default_factory=list)
    entry_id: int | None = None
    referral_id: int | None = None
    colour_now: str = ""
    id_masked: str = ""
    name_masked: str = ""
    field: str = ""
    reason: str = ""

    def as_dict(self) -> dict:
        return dict(vars(self))


def _derive_entry_id(venue_code: str, person_key: str, at: dt.datetime) -> str:
    return "d:" + hashlib.blake2b(f"{venue_code}\0{person_key}\0{at.isoformat()}".encode(), digest_size=16).hexdigest()


def _entry_differs(e: VenueEntry, venue_id: int, person_id: int, item: EntryIn) -> str:
    sent = {"venue": venue_id, "person": person_id, "at": item.at, "temperature": item.temperature,
            "masked": item.masked}
    stored = {"venue": e.venue_id, "person": e.person_id, "at": e.at.replace(microsecond=0),
              "temperature": e.temperature, "masked": e.masked}
    return _differs(stored, sent)


def _entry_replay(r: EntryResult, e: VenueEntry) -> None:
    r.status, r.entry_id, r.decision, r.colour, r.reasons = REPLAYED, e.pk, e.decision, e.colour, e.reasons
    ref = FeverReferral.objects.filter(person_id=e.person_id, venue_id=e.venue_id, measured_at=e.at).first()
    r.referral_id = ref.pk if ref else None


def _record_entries(actor, request, venue, items: list[tuple[int, EntryIn]], results: list[EntryResult], *,
                    now, offline: bool, retry: bool = True) -> int:
    """Judge and write entries (one transaction): entries, fever referrals, recomputed codes, audit, events; the lake
    is appended after commit. Returns the number of entries written."""
    from jingkong.codes import checkpoint_lake

    rules = rules_for(venue.grid.code, now)
    people = identify([it.who for _, it in items], at=now, ats=[it.at for _, it in items] if offline else None,
                      offline=offline)
    firsts: dict[str, tuple[int, EntryIn, Person]] = {}
    repeats: list[tuple[int, int]] = []  # (index, index of the first item with the same id)
    for (i, item), person in zip(items, people, strict=True):
        r = results[i]
        r.id_masked, r.name_masked = person.id_masked, person.name_masked
        if not item.client_id:
            key = str(person.person_id or item.who.id_hash or item.who.token)
            item.client_id = _derive_entry_id(venue.code, key, item.at)
        r.client_id = item.client_id
        first = firsts.get(item.client_id)
        if first is None:
            firsts[item.client_id] = (i, item, person)
            continue
        fi, fitem, fperson = first
        bad = _differs({"person": fperson.person_id, "at": fitem.at, "temperature": fitem.temperature,
                        "masked": fitem.masked},
                       {"person": person.person_id, "at": item.at, "temperature": item.temperature,
                        "masked": item.masked})
        if bad:
            r.status, r.field = REJECTED, bad
            r.reason = _("repeats the record id of item %(index)s with another %(field)s") % {"index": fi, "field": bad}
        else:
            repeats.append((i, fi))
    existing = {e.client_id: e for e in VenueEntry.objects.filter(client_id__in=list(firsts))}
    new_rows, fevers = [], []
    for cid, (i, item, person) in firsts.items():
        r = results[i]
        verdict = cr.judge_venue_entry(person.facts, rules, temperature=item.temperature, masked=item.masked)
        r.decision, r.colour, r.reasons = verdict.decision, verdict.colour, verdict.reasons_dicts()
        if person.person_id is None:
            r.status = NOT_RECORDED  # nobody to record (a bad code or an unregistered ID number): the answer only
            continue
        stored = existing.get(cid)
        if stored is not None:
            bad = _entry_differs(stored, venue.pk, person.person_id, item)
            if bad:
                r.status, r.field = REJECTED, bad
                r.reason = _("client_id %(id)s was already used for another entry (%(field)s differs)") % {
                    "id": cid, "field": bad}
            else:
                _entry_replay(r, stored)
            continue
        region = person.region_code or venue.grid.code
        row = VenueEntry(client_id=cid, venue=venue, person_id=person.person_id, at=item.at,
                         temperature=item.temperature, masked=item.masked, colour=verdict.colour,
                         decision=verdict.decision, reasons=r.reasons, region_code=region, received_at=now)
        new_rows.append((i, row))
        if cr.is_fever(item.temperature, rules):
            fevers.append((i, row))
    if new_rows:
        try:
            with transaction.atomic():
                _write_entries(actor, request, venue, new_rows, fevers, results, now=now, offline=offline)
                rows = [(row.person_id, venue.pk, row.at) for _, row in new_rows]
                transaction.on_commit(lambda: checkpoint_lake.append_checkins(rows))
        except IntegrityError:
            if not retry:
                raise
            # a concurrent request stored one of these ids meanwhile: classify again (now a replay or a clash)
            for i, _item in items:
                results[i].__init__(index=i, status=RECORDED)  # in place: callers hold these objects
            return _record_entries(actor, request, venue, items, results, now=now, offline=offline, retry=False)
    for i, fi in repeats:
        first = results[fi]
        results[i].status = REPLAYED if first.status in (RECORDED, REPLAYED) else first.status
        for name in ("entry_id", "referral_id", "decision", "colour", "reasons", "colour_now"):
            setattr(results[i], name, getattr(first, name))
    return len(new_rows)


def _write_entries(actor, request, venue, new_rows, fevers, results, *, now, offline: bool) -> None:
    VenueEntry.objects.bulk_create([row for _, row in new_rows])
    ids = dict(VenueEntry.objects.filter(client_id__in=[row.client_id for _, row in new_rows])
               .values_list("client_id", "id"))
    for i, row in new_rows:
        results[i].entry_id = ids.get(row.client_id)
    if fevers:
        referrals = [FeverReferral(person_id=row.person_id, temperature=row.temperature, measured_at=row.at,
                                   venue=venue, status=ReferralStatus.REFERRED, region_code=row.region_code)
                     for _, row in fevers]
        FeverReferral.objects.bulk_create(referrals)
        made = {(f.person_id, f.measured_at): f.pk for f in FeverReferral.objects.filter(
            venue=venue, person_id__in=[f.person_id for f in referrals],
            measured_at__in=[f.measured_at for f in referrals])}
        from jingkong.codes import engine

        person_ids = sorted({f.person_id for f in referrals})
        engine.recompute_people(person_ids, at=now)
        colours = dict(HealthCode.objects.filter(person_id__in=person_ids).values_list("person_id", "colour"))
        for i, row in fevers:
            results[i].referral_id = made.get((row.person_id, row.at))
            results[i].colour_now = colours.get(row.person_id, "")
        for f in referrals:
            emit("codes.fever_referred", subject_type="people.person", subject_id=f.person_id,
                 region_code=f.region_code, actor=actor, at=now,
                 payload={"referral_id": made.get((f.person_id, f.measured_at)), "venue": venue.code,
                          "temperature": str(f.temperature)})
    audit.record_many(actor=actor, action="person.venue_entry", object_type="people.person",
                      items=[(row.person_id, row.region_code) for _, row in new_rows], request=request,
                      detail={"venue": venue.code, "offline": offline})
    emit("codes.venue_entries_recorded", subject=venue, region_code=venue.grid.code, actor=actor, at=now,
         payload={"venue": venue.code, "entries": len(new_rows), "fevers": len(fevers), "offline": offline})


def venue_entry_record(*, actor, scope: Scope, venue_code: str, raw: Mapping, request=None) -> tuple[EntryResult, bool]:
    """One venue scan (测温+亮码+戴口罩). Returns (result, created)."""
    now = clock.now()
    venue = venue_get(scope=scope, code=venue_code)
    try:
        item = parse_entry(raw, now=now)
    except ItemRejected as exc:
        raise _invalid(exc) from None
    result = EntryResult(index=0, status=RECORDED)
    _record_entries(actor, request, venue, [(0, item)], [result], now=now, offline=False)
    if result.status == REJECTED:
        raise Conflict(f"{result.field}: {result.reason}", extra={"field": result.field,
                                                                  "client_id": result.client_id})
    return result, result.status == RECORDED and result.entry_id is not None


def venue_entries_sync(*, actor, scope: Scope, venue_code: str, items: Sequence, request=None) -> dict:
    """Entries recorded offline (≤ 500), idempotent by ``client_id`` like the crossings."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise ValidationFailed(_("entries: must be a list"), extra={"field": "entries"})
    if len(items) > MAX_BATCH:
        raise ValidationFailed(_("entries: at most %(n)s per batch") % {"n": MAX_BATCH}, extra={"field": "entries"})
    now = clock.now()
    venue = venue_get(scope=scope, code=venue_code)
    results: list[EntryResult] = []
    good: list[tuple[int, EntryIn]] = []
    for i, raw in enumerate(items):
        r = EntryResult(index=i, status=RECORDED)
        results.append(r)
        try:
            good.append((i, parse_entry(raw, now=now, offline=True)))
        except ItemRejected as exc:
            r.status, r.field, r.reason = REJECTED, exc.field, exc.reason
            if isinstance(raw, Mapping) and isinstance(raw.get("client_id"), str):
                r.client_id = raw["client_id"][:MAX_CLIENT_ID].replace("\x00", "")
    if good:
        _record_entries(actor, request, venue, good, results, now=now, offline=True)
    counts = {RECORDED: 0, REPLAYED: 0, REJECTED: 0, NOT_RECORDED: 0}
    for r in results:
        counts[r.status] += 1
    return {"counts": counts, "results": [r.as_dict() for r in results]}


# --- fever-clinic referrals -----------------------------------------------------------------------------------------

REFERRAL_NEXT = {ReferralStatus.REFERRED: {ReferralStatus.VISITED, ReferralStatus.CLEARED},
                 ReferralStatus.VISITED: {ReferralStatus.CLEARED}, ReferralStatus.CLEARED: set()}


def referral_set_status(*, actor, scope: Scope, referral_id: int, status: str, note: str = "",
                        request=None) -> FeverReferral:
    """referred → visited → cleared (or referred → cleared). Recomputes the person's code in the same transaction."""
    if status not in {s.value for s in ReferralStatus}:
        raise ValidationFailed(_("unknown status %(s)s") % {"s": status}, extra={"field": "status"})
    no_nul("note", note)
    now = clock.now()
    with transaction.atomic():
        ref = FeverReferral.objects.select_for_update().filter(pk=referral_id).first() \
            if isinstance(referral_id, int) and 0 < referral_id < 2 ** 63 else None
        if ref is None or not scope.contains(ref.region_code):
            raise NotFound(_("referral not found"))
        if status == ref.status:
            return ref
        if status not in REFERRAL_NEXT[ReferralStatus(ref.status)]:
            raise Conflict(_("a %(from)s referral cannot become %(to)s") % {"from": ref.status, "to": status},
                           extra={"field": "status"})
        previous = ref.status
        ref.status = status
        if note:
            ref.note = (ref.note + "\n" + note).strip() if ref.note else note
        if status == ReferralStatus.CLEARED:
            ref.closed_at = now
        ref.save(update_fields=["status", "note", "closed_at"])
        from jingkong.codes import engine

        engine.recompute_people([ref.person_id], at=now)
        audit.record(actor=actor, action="referral.status", object_type="people.person", object_id=ref.person_id,
                     region_code=ref.region_code, request=request,
                     detail={"referral": ref.pk, "from": previous, "to": status})
        emit(f"codes.referral_{status}", subject_type="people.person", subject_id=ref.person_id,
             region_code=ref.region_code, actor=actor, at=now, payload={"referral_id": ref.pk, "from": previous})
    return ref
