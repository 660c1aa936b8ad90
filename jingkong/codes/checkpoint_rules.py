"""卡口 and venue-entry decisions, pure (no database): allow, refer or deny, with every reason.

The facts are gathered by jingkong/codes/checkpoints.py (online: the code on record, zones, tests, risk areas, passes;
offline: the signed token alone); the rule values come from the policy profile's ``checkpoints`` section
(:class:`jingkong.policy.schema.CheckpointRules`). Every check that fires adds a :class:`Reason` (a stable code, a
text, the verdict it asks for, and whom it concerns); the decision is the most severe verdict asked for
(deny > refer > allow). Informational reasons (verdict ``allow``) record what was waived, e.g. a pass letting a
vehicle through although a passenger's code is yellow.

Person checks, in order:

* **token** — an expired code (``expired``) or a forged/altered/unreadable one (``malformed``, ``bad_signature``,
  ``unknown_key``, ``not_yet_valid``): the profile's ``expired_token``/``invalid_token`` verdict; nothing else is known.
* **person** — an ID number nobody on the register has: ``unknown_person``.
* **colour** — ``deny_colours`` (red) deny, ``refer_colours`` (yellow) refer; no code on record refers.
* **zone exit** — a resident of a ``no_exit_zone_types`` zone (封控区) at a checkpoint guarding that zone (not coming
  in) or travelling outbound anywhere: ``zone_exit``.
* **origin** — arriving from a published high/medium-risk area: ``origin_risk[level]``.
* **negative test** — when the checkpoint's kind and the direction ask for one (``negative_test_kinds``,
  ``negative_test_directions``): a negative sampled within ``negative_test_hours`` before the crossing, else
  ``no_negative_test``.

Vehicles: every occupant is checked (driver and passengers); the vehicle's decision is the most severe. A valid pass
of a ``flowing_pass_kinds`` kind whose plate matches lets the vehicle through whatever the occupants' checks say —
unless the driver's code is one of ``pass_driver_deny_colours`` (or the driver's code cannot be read at all): the
occupants' reasons are kept, marked as waived by the pass. A passenger's *deny* (a red code, leaving a lockdown zone,
…) is waived only by a pass of a ``pass_carries_denied_kinds`` kind (ambulances, transfer vehicles; absent from the
profile: medical and transfer): a supply truck does not carry people out of a lockdown zone.

Venue entry (测温+亮码+戴口罩): the person checks without zone/origin/test, plus temperature ≥
``fever_threshold_celsius`` (refer to the fever clinic; the service turns the code yellow) and no mask when
``mask_required``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

ALLOW, REFER, DENY = "allow", "refer", "deny"
SEVERITY = {ALLOW: 0, REFER: 1, DENY: 2}
COLOUR_SEVERITY = {"": 0, "green": 1, "yellow": 2, "orange": 3, "red": 4}
IN, OUT = "in", "out"
DIRECTIONS = ("", IN, OUT)
EXPIRED = "expired"
TOKEN_REASONS = ("malformed", "bad_signature", "unknown_key", "expired", "not_yet_valid")
DEFAULT_PASS_CARRIES_DENIED = ("medical", "transfer")  # when the profile has no pass_carries_denied_kinds
PASS_PROBLEMS = ("unknown", "revoked", "expired", "not_yet_valid", "plate_mismatch", "kind_not_flowing")


@dataclass(frozen=True)
class Reason:
    """One check that fired. ``who``: "" (the person checked), "driver", "passenger 1", … or "pass"."""

    code: str
    text: str
    verdict: str
    who: str = ""
    waived: bool = False  # overruled by a pass (recorded, not acted on)

    def as_dict(self) -> dict:
        out = {"code": self.code, "text": self.text, "verdict": self.verdict}
        if self.who:
            out["who"] = self.who
        if self.waived:
            out["waived"] = True
        return out


@dataclass(frozen=True)
class PersonFacts:
    """What is known of one person at the crossing.

    ``token_problem``: the InvalidToken reason code ('' when the token verified or none was shown). ``found``: False
    for an ID number nobody on the register has. ``colour``: the code's colour ('' when none is known). ``zones``:
    (zone id, zone type) of every zone in force the person lives in. ``last_negative_at``: the sampling time of the
    latest negative test (None: none known)."""

    person_id: int | None = None
    token_problem: str = ""
    found: bool = True
    colour: str = ""
    zones: tuple[tuple[int, str], ...] = ()
    last_negative_at: dt.datetime | None = None


@dataclass(frozen=True)
class CheckpointFacts:
    kind: str
    direction: str = ""  # "in", "out" or "" (not said)
    zone_id: int | None = None  # the zone the checkpoint guards


@dataclass(frozen=True)
class PassFacts:
    """A pass shown for a vehicle: its number and kind, and ``problem`` (one of :data:`PASS_PROBLEMS`, '' when valid
    for this plate at this time)."""

    number: str
    kind: str = ""
    problem: str = ""


@dataclass
class Verdict:
    decision: str
    reasons: list[Reason] = field(default_factory=list)
    colour: str = ""  # the most restrictive colour seen (a vehicle: of its occupants)
    pass_used: bool = False

    def reasons_dicts(self) -> list[dict]:
        return [r.as_dict() for r in self.reasons]


def decide(reasons: Iterable[Reason]) -> str:
    """The most severe verdict among reasons that are not waived (none: allow)."""
    worst = ALLOW
    for r in reasons:
        if not r.waived and SEVERITY[r.verdict] > SEVERITY[worst]:
            worst = r.verdict
    return worst


def worst_colour(colours: Iterable[str]) -> str:
    best = ""
    for c in colours:
        if COLOUR_SEVERITY.get(c or "", 0) > COLOUR_SEVERITY.get(best, 0):
            best = c
    return best


def token_text(problem: str) -> str:
    texts = {
        "expired": _("the code has expired: ask for a fresh code or the ID card"),
        "not_yet_valid": _("the code is not valid yet (check the device clock)"),
        "bad_signature": _("the code's signature is wrong: forged or altered"),
        "unknown_key": _("the code was signed by an unknown key: forged, or the device lacks the latest keys"),
        "malformed": _("not a health code of this platform"),
    }
    return texts.get(problem, _("the code cannot be verified (%(reason)s)") % {"reason": problem})


def _colour_name(colour: str) -> str:
    names = {"red": _("red"), "yellow": _("yellow"), "orange": _("orange"), "green": _("green")}
    return names.get(colour, colour)


# --- people ---------------------------------------------------------------------------------------------------------


def token_reasons(person: PersonFacts, rules, who: str = "") -> list[Reason]:
    """The reason a shown token cannot be used (empty when it verified or no token was shown)."""
    if not person.token_problem:
        return []
    verdict = rules.expired_token if person.token_problem == EXPIRED else rules.invalid_token
    code = "token_expired" if person.token_problem == EXPIRED else "token_invalid"
    return [Reason(code, token_text(person.token_problem), verdict, who)]


def code_reasons(person: PersonFacts, rules, who: str = "") -> list[Reason]:
    """Token, register and colour checks (what a device can do offline from the signed token alone)."""
    out = token_reasons(person, rules, who)
    if out:
        return out
    if not person.found:
        return [Reason("unknown_person", _("nobody on the register has this ID number: register the person"),
                       rules.unknown_person, who)]
    colour = person.colour or ""
    if colour in rules.deny_colours:
        out.append(Reason("code_colour", _("%(colour)s code") % {"colour": _colour_name(colour)}, DENY, who))
    elif colour in rules.refer_colours:
        out.append(Reason("code_colour", _("%(colour)s code") % {"colour": _colour_name(colour)}, REFER, who))
    elif not colour:
        out.append(Reason("no_code", _("no health code on record: check by hand"), REFER, who))
    return out


def zone_exit_reason(person: PersonFacts, checkpoint: CheckpointFacts, rules, who: str = "") -> Reason | None:
    """A resident of a no-exit zone (封控区) leaving it: at a checkpoint guarding their zone (unless coming in), or
    travelling outbound anywhere."""
    for zone_id, zone_type in person.zones:
        if zone_type not in rules.no_exit_zone_types:
            continue
        guards = checkpoint.zone_id is not None and checkpoint.zone_id == zone_id and checkpoint.direction != IN
        if guards or checkpoint.direction == OUT:
            return Reason("zone_exit", _("lives in a zone that may not be left (%(type)s)") % {"type": zone_type},
                          rules.zone_exit, who)
    return None


def origin_reason(origin_risk: str | None, rules, who: str = "") -> Reason | None:
    if not origin_risk:
        return None
    verdict = rules.origin_risk.get(origin_risk)
    if verdict is None:
        return None
    text = (_("arriving from a high-risk area") if origin_risk == "high"
            else _("arriving from a medium-risk area"))
    return Reason("origin_risk", text, verdict, who)


def needs_negative_test(checkpoint: CheckpointFacts, rules) -> bool:
    return checkpoint.kind in rules.negative_test_kinds and checkpoint.direction in rules.negative_test_directions


def negative_test_reason(person: PersonFacts, checkpoint: CheckpointFacts, rules, at: dt.datetime,
                         who: str = "") -> Reason | None:
    if not needs_negative_test(checkpoint, rules):
        return None
    hours = rules.negative_test_hours
    last = person.last_negative_at
    if last is not None and at - dt.timedelta(hours=hours) <= last <= at + dt.timedelta(minutes=10):
        return None
    return Reason("no_negative_test", _("no negative test within %(hours)s hours") % {"hours": hours},
                  rules.no_negative_test, who)


def person_reasons(person: PersonFacts, checkpoint: CheckpointFacts, rules, *, at: dt.datetime,
                   origin_risk: str | None = None, offline: bool = False, who: str = "") -> list[Reason]:
    """Every reason for one person at a checkpoint. ``offline``: only what the signed token says (code checks)."""
    out = code_reasons(person, rules, who)
    if offline or person.token_problem or not person.found:
        return out
    for extra in (zone_exit_reason(person, checkpoint, rules, who), origin_reason(origin_risk, rules, who),
                  negative_test_reason(person, checkpoint, rules, at, who)):
        if extra is not None:
            out.append(extra)
    return out


def judge_person(person: PersonFacts, checkpoint: CheckpointFacts, rules, *, at: dt.datetime,
                 origin_risk: str | None = None, offline: bool = False) -> Verdict:
    reasons = person_reasons(person, checkpoint, rules, at=at, origin_risk=origin_risk, offline=offline)
    return Verdict(decide(reasons), reasons, person.colour or "")


# --- vehicles -------------------------------------------------------------------------------------------------------


def pass_text(problem: str, number: str) -> str:
    texts = {
        "unknown": _("pass %(number)s is not on record"),
        "revoked": _("pass %(number)s was revoked"),
        "expired": _("pass %(number)s has expired"),
        "not_yet_valid": _("pass %(number)s is not valid yet"),
        "plate_mismatch": _("pass %(number)s was issued for another vehicle"),
        "kind_not_flowing": _("pass %(number)s is not of a kind that keeps vehicles flowing"),
    }
    return texts.get(problem, _("pass %(number)s cannot be used")) % {"number": number}


def judge_vehicle(driver: PersonFacts | None, passengers: Sequence[PersonFacts], checkpoint: CheckpointFacts, rules,
                  *, at: dt.datetime, origin_risk: str | None = None, pass_: PassFacts | None = None,
                  offline: bool = False) -> Verdict:
    """A vehicle: every occupant's reasons (who: driver / passenger N); a valid flowing pass waives them unless the
    driver's code forbids it."""
    reasons: list[Reason] = []
    colours = []
    if driver is None:
        reasons.append(Reason("no_driver", _("the driver was not checked"), REFER, "driver"))
    else:
        reasons += person_reasons(driver, checkpoint, rules, at=at, origin_risk=origin_risk, offline=offline,
                                  who="driver")
        colours.append(driver.colour)
    for i, p in enumerate(passengers, start=1):
        reasons += person_reasons(p, checkpoint, rules, at=at, origin_risk=origin_risk, offline=offline,
                                  who=f"passenger {i}")
        colours.append(p.colour)
    colour = worst_colour(colours)
    if pass_ is None:
        return Verdict(decide(reasons), reasons, colour)
    problem = pass_.problem
    if not problem and pass_.kind not in rules.flowing_pass_kinds:
        problem = "kind_not_flowing"
    if problem:
        reasons.append(Reason("pass_invalid", pass_text(problem, pass_.number), ALLOW, "pass"))
        return Verdict(decide(reasons), reasons, colour)
    driver_blocks = driver is None or bool(driver.token_problem) or not driver.found \
        or driver.colour in rules.pass_driver_deny_colours
    if driver_blocks:
        # The pass does not help: a red (or unverifiable) driver stops the vehicle.
        if driver is not None and driver.colour in rules.pass_driver_deny_colours:
            reasons.append(Reason("pass_driver_colour", _("pass %(number)s does not cover a %(colour)s-code driver") % {
                "number": pass_.number, "colour": _colour_name(driver.colour)}, DENY, "pass"))
        return Verdict(decide(reasons), reasons, colour)
    carriers = rules.pass_carries_denied_kinds
    carriers = DEFAULT_PASS_CARRIES_DENIED if carriers is None else carriers
    # A passenger who would be turned back is not carried through by a supply or official pass (no one leaves a
    # lockdown zone in a supply truck); an ambulance or a transfer vehicle carries them.
    keep = pass_.kind not in carriers
    waived = [Reason(r.code, r.text, r.verdict, r.who,
                     waived=r.verdict != ALLOW and not (keep and r.verdict == DENY and r.who.startswith("passenger")))
              for r in reasons]
    waived.append(Reason("pass_valid", _("pass %(number)s (%(kind)s) keeps the vehicle flowing") % {
        "number": pass_.number, "kind": pass_.kind}, ALLOW, "pass"))
    if keep and any(r.verdict == DENY and not r.waived for r in waived):
        waived.append(Reason("pass_passengers", _("pass %(number)s (%(kind)s) does not carry passengers who are "
                                                  "turned back") % {"number": pass_.number, "kind": pass_.kind},
                             DENY, "pass"))
    return Verdict(decide(waived), waived, colour, pass_used=True)


# --- venue entry ----------------------------------------------------------------------------------------------------


def is_fever(temperature: Decimal | float | None, rules) -> bool:
    if temperature is None:
        return False
    return Decimal(str(temperature)) >= Decimal(str(rules.fever_threshold_celsius))


def judge_venue_entry(person: PersonFacts, rules, *, temperature: Decimal | float | None,
                      masked: bool | None) -> Verdict:
    """测温+亮码+戴口罩: the code checks, a fever (refer to the fever clinic) and a missing mask."""
    reasons = code_reasons(person, rules)
    if is_fever(temperature, rules):
        reasons.append(Reason("fever", _("temperature %(t)s °C (fever from %(limit)s °C): go to the fever clinic") % {
            "t": temperature, "limit": rules.fever_threshold_celsius}, REFER))
    if rules.mask_required and masked is False:
        reasons.append(Reason("no_mask", _("no mask"), rules.no_mask))
    return Verdict(decide(reasons), reasons, person.colour or "")
