"""The policy rule set (``PolicyRules``) and the shipped profile document (``ProfileDocument``): data, validated.

Every rule value the platform applies — quarantine lengths, test days, zone lifting, pooling, testing intervals,
health-code rules, five-stage clock targets, service priorities — lives in a policy profile, never in code. This module
only says what a valid rule set looks like: strict types (``"14"`` is not 14, ``true`` is not 1), ranges, cross-field
checks, and no unknown keys anywhere (``extra="forbid"``), so a typo in a profile is an error with a path, not a rule
silently ignored. It is pure (no Django, no database) and tested without one.

Provenance: the profile document carries a ``sources`` mapping beside ``rules``, keyed by the dotted path of a value
(``quarantine.close_contact.central_days``) or of a whole subtree, with the status from policy_rules.md: ``S`` stated
in a source that was read, ``SW`` weak source, ``M`` memory/inference or a platform default (unverified), and
``local`` for a value a district changed in a later version.

How a later issue adds rules without breaking stored profiles
--------------------------------------------------------------
Stored profile versions are immutable and must keep validating forever, so:

1. Define the new section as a ``_Section`` subclass (strict, ``extra="forbid"``, ranges, cross-field checks).
2. Add it to :class:`PolicyRules` as ``name: NewSection | None = None`` — never a required field, and never with
   rule values as defaults (that would be a rule constant in code). A new field inside an existing section follows
   the same rule: ``field: T | None = None``.
3. Put the values (and their ``sources``) into the shipped ``profiles/*.json``; ``jingkong policy install`` then
   stores a new version of each changed profile, and ``jingkong policy activate CODE`` switches a district to it.
4. Readers call :meth:`PolicyRules.section` (``rules.section("name")``), which raises :class:`RulesIncomplete`
   with an operator-readable message when the active version predates the section.

``tests/test_schema.py::test_sections_added_later_are_optional`` enforces rule 2.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

# ---------------------------------------------------------------------------------------------------------------------
# Vocabulary (identifiers, not rule values).

Provenance = Literal["S", "SW", "M", "local"]
ZoneType = Literal["lockdown", "control", "prevention", "high_risk", "medium_risk", "low_risk"]
ZONE_SCHEMES: dict[str, tuple[str, ...]] = {
    # 三区 (H2 2021 – June 2022): 封控区, 管控区, 防范区 — most to least severe.
    "three_zones": ("lockdown", "control", "prevention"),
    # 9th edition 高/中/低风险区 (2022-06-28 onwards).
    "risk_areas": ("high_risk", "medium_risk", "low_risk"),
}
ControlUnit = Literal["household", "entrance", "building", "compound", "grid", "community", "street"]
Swab = Literal["nasopharyngeal", "oropharyngeal", "nasal", "any"]
CodeColour = Literal["green", "yellow", "orange", "red"]

Days = Annotated[int, Field(ge=0, le=60)]
PositiveDays = Annotated[int, Field(ge=1, le=60)]
Hours = Annotated[int, Field(ge=1, le=168)]
Minutes = Annotated[int, Field(ge=1, le=1440)]
DayList = Annotated[list[Annotated[int, Field(ge=1, le=60)]], Field(max_length=60)]

_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _fail(path: str, message: str) -> PydanticCustomError:
    """A cross-field error pinned to ``path`` (relative to the model that raises it); see :func:`rule_errors`."""
    return PydanticCustomError("policy_rule", message.replace("{", "(").replace("}", ")"), {"path": path})


def _check_days(path: str, days: list[int], length: int, what: str) -> None:
    if days != sorted(set(days)):
        raise _fail(path, f"test days must be increasing without repeats, got {days}")
    beyond = [d for d in days if d > length]
    if beyond:
        raise _fail(path, f"test day {beyond[0]} is after the end of the {length}-day {what}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------------------------------------------------------------
# contacts — who counts as a contact.


class SpaceTimeCompanion(_Section):
    """时空伴随: in the same spatial cell as a case for at least ``min_minutes``."""

    cell_metres: int = Field(ge=10, le=5000, description="Side of the spatial cell, metres.")
    min_minutes: Minutes = Field(description="Minimum time in the same cell, minutes.")


class ContactRules(_Section):
    lookback_days: int = Field(ge=0, le=14, description="Days before onset (or sampling) a contact counts (密接窗口).")
    lookback_days_delta_override: int | None = Field(
        default=None, ge=0, le=21, description="Longer look-back used for variants such as Delta; null: none."
    )
    colocation_overlap_minutes: Minutes = Field(description="Overlap at the same venue that makes a co-location.")
    space_time_companion: SpaceTimeCompanion

    @model_validator(mode="after")
    def _override_longer(self) -> ContactRules:
        if self.lookback_days_delta_override is not None and self.lookback_days_delta_override < self.lookback_days:
            raise _fail(
                "lookback_days_delta_override",
                f"the variant override ({self.lookback_days_delta_override} d) is shorter than the normal look-back "
                f"({self.lookback_days} d)",
            )
        return self


# ---------------------------------------------------------------------------------------------------------------------
# quarantine — close and secondary contacts.


class CloseContactQuarantine(_Section):
    central_days: Days = Field(description="Centralised quarantine (集中隔离医学观察), days.")
    home_days: Days = Field(description="Home phase after release (居家健康监测 or 居家隔离), days; 0: none.")
    home_mode: Literal["home_monitoring", "home_isolation"]
    counted_from: Literal["last_exposure", "quarantine_start"]
    central_test_days: DayList = Field(description="Test days of the central phase (day 1 = first day).")
    home_test_days: DayList = Field(description="Test days of the home phase (day 1 = first home day).")
    swab: Swab
    release_double_sampling: bool = Field(description="双采双检 before release.")

    @model_validator(mode="after")
    def _consistent(self) -> CloseContactQuarantine:
        if self.central_days + self.home_days == 0:
            raise _fail("central_days", "a close-contact quarantine needs at least one day")
        _check_days("central_test_days", self.central_test_days, self.central_days, "central quarantine")
        _check_days("home_test_days", self.home_test_days, self.home_days, "home phase")
        return self


class SecondaryContactQuarantine(_Section):
    mode: Literal["central", "home", "none"] = Field(description="'none': secondary contacts are not managed.")
    days: Days
    test_days: DayList
    release_requires_index_negative_tests: int = Field(
        ge=0, le=5, description="Release needs this many first tests of the index close contact negative."
    )
    upgrade_if_index_positive: bool = Field(description="A positive index contact makes this a close contact.")

    @model_validator(mode="after")
    def _consistent(self) -> SecondaryContactQuarantine:
        if self.mode == "none":
            if self.days or self.test_days:
                raise _fail("days", "mode 'none' takes 0 days and no test days")
            return self
        if self.days == 0:
            raise _fail("days", f"mode {self.mode!r} needs at least one day")
        _check_days("test_days", self.test_days, self.days, "quarantine")
        return self


class TransferDeadlines(_Section):
    close_contact: Hours = Field(description="Hours from identification to arrival at the quarantine site.")
    secondary_contact: Hours


class QuarantineRules(_Section):
    close_contact: CloseContactQuarantine
    secondary_contact: SecondaryContactQuarantine
    transfer_deadline_hours: TransferDeadlines


# ---------------------------------------------------------------------------------------------------------------------
# zones — 三区 (2021) or 高/中/低风险区 (2022).


class ZoneLifting(_Section):
    """三区 lifting: all three conditions (policy_rules.md §2.2)."""

    no_new_infection_days: PositiveDays
    last_exposure_days: PositiveDays = Field(description="Days since the last contact's last exposure.")
    screening_days_before_lift: PositiveDays = Field(description="Everyone screened negative within these days.")

    @model_validator(mode="after")
    def _consistent(self) -> ZoneLifting:
        if self.screening_days_before_lift > self.no_new_infection_days:
            raise _fail("screening_days_before_lift", "the lifting screen must fall inside the no-new-infection window")
        return self


class RiskAreaDowngrade(_Section):
    """9th-edition downgrading (policy_rules.md §2.3)."""

    high_to_medium_days: PositiveDays = Field(description="Consecutive days without a new infection: high → medium.")
    medium_to_low_days: PositiveDays = Field(description="Consecutive days without a new infection: medium → low.")
    downgraded_high_to_low_days: PositiveDays = Field(description="A downgraded high-risk area: further days → low.")
    screening_day: PositiveDays = Field(description="Day of the all-negative screening that allows a downgrade.")

    @model_validator(mode="after")
    def _consistent(self) -> RiskAreaDowngrade:
        if self.screening_day > min(self.high_to_medium_days, self.medium_to_low_days):
            raise _fail("screening_day", "the screening day falls after the downgrade period")
        return self


class ZoneRules(_Section):
    scheme: Literal["three_zones", "risk_areas"]
    types: list[ZoneType] = Field(min_length=1, description="Zone types in use, most severe first.")
    smallest_control_unit: ControlUnit
    lifting: ZoneLifting | None = Field(default=None, description="Required for 'three_zones'.")
    downgrade: RiskAreaDowngrade | None = Field(default=None, description="Required for 'risk_areas'.")
    # Added by the zones feature (proposal from a case); optional: stored versions predate them.
    control_ring: Literal["grid", "community", "street"] | None = Field(
        default=None, description="Control zone (管控区 / medium risk) = the rest of this region around the lockdown.")
    prevention_area: Literal["street", "district"] | None = Field(
        default=None, description="Prevention zone (防范区 / low risk) = the rest of this region.")
    frequent_place_min_visits: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None, description="A venue of the case's timeline visited at least this often is a frequent place.")
    frequent_place_min_hours: Annotated[int, Field(ge=1, le=336)] | None = Field(
        default=None, description="A venue where the case stayed at least these hours in all is a frequent place.")

    @model_validator(mode="after")
    def _consistent(self) -> ZoneRules:
        rank = {"grid": 4, "community": 5, "street": 6, "district": 7}
        if self.control_ring and self.prevention_area and rank[self.prevention_area] <= rank[self.control_ring]:
            raise _fail("prevention_area", "the prevention area must be larger than the control ring")
        if self.control_ring and self.smallest_control_unit in ("community", "street") \
                and rank[self.control_ring] <= rank[self.smallest_control_unit]:
            raise _fail("control_ring", "the control ring must be larger than the smallest control unit")
        order = ZONE_SCHEMES[self.scheme]
        foreign = [t for t in self.types if t not in order]
        if foreign:
            raise _fail("types", f"{foreign[0]!r} is not a zone type of the {self.scheme!r} scheme {list(order)}")
        if len(set(self.types)) != len(self.types) or [t for t in order if t in self.types] != self.types:
            raise _fail("types", f"zone types must be unique and ordered most severe first: {list(order)}")
        if self.scheme == "three_zones":
            if self.lifting is None:
                raise _fail("lifting", "the 'three_zones' scheme needs lifting rules")
            if self.downgrade is not None:
                raise _fail("downgrade", "downgrade rules belong to the 'risk_areas' scheme")
        else:
            if self.downgrade is None:
                raise _fail("downgrade", "the 'risk_areas' scheme needs downgrade rules")
            if self.lifting is not None:
                raise _fail("lifting", "lifting rules belong to the 'three_zones' scheme")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# testing — pooling and key-industry periodic testing.


class KeyIndustryIntervals(_Section):
    """Days between periodic tests of key-industry workers (identifiers match people.Industry)."""

    port: PositiveDays
    cold_chain: PositiveDays
    airport: PositiveDays
    hospital: PositiveDays
    transport: PositiveDays
    ship_crew: PositiveDays


class TestingRules(_Section):
    __test__ = False  # not a pytest class

    pool_sizes_allowed: list[Annotated[int, Field(ge=1, le=20)]] = Field(
        min_length=1, description="Swabs per tube allowed (1 = single tube)."
    )
    default_pool_size_by_zone: dict[ZoneType, int] = Field(description="Default pool size for each zone type in use.")
    one_tube_per_household_zones: list[ZoneType] = Field(description="Zones where one tube per household is allowed.")
    key_industry_interval_days: KeyIndustryIntervals

    @model_validator(mode="after")
    def _consistent(self) -> TestingRules:
        sizes = self.pool_sizes_allowed
        if sizes != sorted(set(sizes)):
            raise _fail("pool_sizes_allowed", f"pool sizes must be increasing without repeats, got {sizes}")
        if 1 not in sizes:
            raise _fail("pool_sizes_allowed", "single-tube sampling (1) must be allowed: positive pools are retested singly")
        for zone, size in self.default_pool_size_by_zone.items():
            if size not in sizes:
                raise _fail(f"default_pool_size_by_zone.{zone}", f"{size} is not an allowed pool size {sizes}")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# health codes — declarative rules; the health-code feature defines the condition vocabulary.


class HealthCodeRule(_Section):
    id: str = Field(pattern=_ID_RE.pattern, description="Stable identifier (lower_snake_case).")
    colour: CodeColour
    condition: str = Field(min_length=1, max_length=500, description="Declarative condition, e.g. 'case.confirmed'.")
    reason: str = Field(min_length=1, max_length=200, description="Shown to the person and to officers.")


def _health_code_facts() -> frozenset[str]:
    """The condition vocabulary of health-code rules (what each fact means and where it comes from:
    docs/health-codes.md; how it is gathered: jingkong/codes/facts.py)."""
    from typing import get_args

    base = {
        "case.confirmed", "case.asymptomatic",
        "test.initial_screen_positive", "test.pool_positive", "test.resample",
        "contact.close.quarantine", "contact.close.central_quarantine", "contact.close.home_phase",
        "contact.secondary.quarantine", "companion.space_time",
        "arrival.high_risk", "arrival.medium_risk",
        "fever.referred", "person.symptoms_reported", "key_industry.overdue",
        "isolation.central", "isolation.hospital", "isolation.home_quarantine", "isolation.home_monitoring",
    }
    return frozenset(base | {f"zone.{t}.resident" for t in get_args(ZoneType)})


HEALTH_CODE_FACTS: frozenset[str] = _health_code_facts()


class HealthCodeRules(_Section):
    colours: list[CodeColour] = Field(min_length=1, description="Colours in use, most restrictive first.")
    rules: list[HealthCodeRule] = Field(description="Evaluated in order; the first matching rule decides.")
    # Added with the health-code engine (optional: stored versions predate them).
    arrival_window_days: PositiveDays | None = Field(
        default=None, description="An arrival from a medium/high-risk area counts for this many days (arrival.*)."
    )
    # Added with the signed code tokens (jingkong/codes/tokens.py); older versions lack it (RulesIncomplete).
    token_minutes: Minutes | None = Field(
        default=None, description="Minutes a signed code token (the QR code of the 亮码 page) stays valid.")

    @model_validator(mode="after")
    def _consistent(self) -> HealthCodeRules:
        if len(set(self.colours)) != len(self.colours):
            raise _fail("colours", "colours must be unique")
        if "green" not in self.colours:
            raise _fail("colours", "'green' (the default, no restriction) must be in use")
        seen: set[str] = set()
        last_rank = 0
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise _fail(f"rules[{i}].id", f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
            if rule.colour not in self.colours:
                raise _fail(f"rules[{i}].colour", f"{rule.colour!r} is not among the colours in use {self.colours}")
            # The first matching rule decides: a less restrictive rule listed before a more restrictive one would
            # give a case who also matches it the milder colour.
            rank = self.colours.index(rule.colour)
            if rank < last_rank:
                raise _fail(f"rules[{i}].colour", f"rules must be listed most restrictive colour first "
                            f"({self.colours}): {rule.colour!r} comes after a {self.colours[last_rank]!r} rule")
            last_rank = rank
            facts = _check_condition(f"rules[{i}].condition", rule.condition)
            if self.arrival_window_days is None and any(f.startswith("arrival.") for f in facts):
                raise _fail(f"rules[{i}].condition", "arrival facts need 'arrival_window_days' (health_codes)")
        return self


def _check_condition(path: str, condition: str) -> frozenset[str]:
    """Parse a health-code condition (jingkong.codes.rules is pure: no Django, no database) against the vocabulary."""
    from jingkong.codes.rules import ConditionError, evaluate, facts_of, parse

    try:
        tree = parse(condition, vocabulary=HEALTH_CODE_FACTS)
    except ConditionError as exc:
        raise _fail(path, str(exc)) from None
    if evaluate(tree, {})[0]:
        raise _fail(path, "the condition holds for a person without any fact (everybody); "
                          "combine 'not' with a fact that must hold")
    return facts_of(tree)


# ---------------------------------------------------------------------------------------------------------------------
# clock targets (五快) and services.


class ClockTargets(_Section):
    """Target hours for each stage of the five-fast loop (快检测, 快流调, 快编组, 快转运, 快隔离)."""

    testing: Hours
    tracing: Hours
    grouping: Hours
    transfer: Hours
    isolation: Hours
    # Finer targets added by the five-stage clock (optional; each falls back to the main field named).
    investigation_hours: Hours | None = None  # core investigation (核心流调) done; else ``tracing``
    transfer_close_hours: Hours | None = None  # close contacts in quarantine; else ``transfer``
    transfer_secondary_hours: Hours | None = None  # secondary contacts; else ``transfer``


class ServiceCategoryHours(_Section):
    medical_emergency: Hours
    medicine: Hours
    food: Hours
    daily_needs: Hours


class VulnerableGroupHours(_Section):
    """Identifiers match people.Vulnerable."""

    elderly: Hours
    young_child: Hours
    pregnant: Hours
    chronic: Hours
    limited_mobility: Hours


ServiceCategoryId = Literal["medicine", "medical_visit", "food", "garbage", "psychological", "other"]
Priority = Annotated[int, Field(ge=1, le=9)]


class ServiceSubcategoryRule(_Section):
    """One kind of need inside a category (e.g. ``medical_visit.dialysis``)."""

    priority: Priority = Field(description="1 = served first.")
    hours: Hours = Field(description="Hours from submission to delivery.")
    escort: bool = Field(description="Urgent medical need: also request an escort/transfer (闭环转运) for the person.")


class ServiceCategoryRule(_Section):
    """A request category (暖服务): its priority and deadline, and its subcategories (identifiers; a request names one
    of them or none)."""

    priority: Priority = Field(description="1 = served first.")
    hours: Hours = Field(description="Hours from submission to delivery.")
    subcategories: dict[str, ServiceSubcategoryRule] = Field(max_length=30)

    @model_validator(mode="after")
    def _ids(self) -> ServiceCategoryRule:
        for key in self.subcategories:
            if not _ID_RE.match(key):
                raise _fail(f"subcategories.{key}", "a subcategory is an identifier (a-z, 0-9, _)")
        return self


class VulnerableGroupPriority(_Section):
    """Priority a request of a person in the group gets at least (identifiers match people.Vulnerable)."""

    elderly: Priority
    young_child: Priority
    pregnant: Priority
    chronic: Priority
    limited_mobility: Priority


class ServiceRules(_Section):
    """Door-to-door service (上门服务) response targets, hours.

    The services feature (issue 7) added the optional ``categories``, ``priority_by_group`` and
    ``confirmation_window_hours``; see jingkong/command/service_rules.py for how they combine."""

    priority_hours_by_category: ServiceCategoryHours
    priority_hours_by_group: VulnerableGroupHours
    categories: dict[ServiceCategoryId, ServiceCategoryRule] | None = None
    priority_by_group: VulnerableGroupPriority | None = None
    confirmation_window_hours: Hours | None = Field(
        default=None, description="Hours after delivery for the resident to confirm; then the request closes itself."
    )


# ---------------------------------------------------------------------------------------------------------------------
# transmission — the incubation window used to suggest transmission links (added with the tracing feature).


class TransmissionRules(_Section):
    """Incubation period bounds: an earlier case is suggested as the infector of a later one when their shared
    exposure lies between ``incubation_max_days`` and ``incubation_min_days`` before the later case's onset (or
    positive sampling)."""

    incubation_min_days: Days = Field(description="Shortest incubation period, days.")
    incubation_max_days: PositiveDays = Field(description="Longest incubation period, days.")
    # The serial interval of the circulating variant, for R(t) on the command screen (analytics.rt). Optional: without
    # it the screen uses the documented default (analytics.rt.DEFAULT_SI_MEAN/SD) and says so.
    serial_interval_mean_days: Annotated[float, Field(gt=1, le=30)] | None = Field(
        default=None, description="Mean serial interval, days (> 1: discretised as Cori et al. 2013).")
    serial_interval_sd_days: Annotated[float, Field(gt=0, le=30)] | None = Field(
        default=None, description="Standard deviation of the serial interval, days.")

    @model_validator(mode="after")
    def _ordered(self) -> TransmissionRules:
        if self.incubation_min_days > self.incubation_max_days:
            raise _fail("incubation_min_days", "the shortest incubation is longer than the longest")
        if (self.serial_interval_mean_days is None) != (self.serial_interval_sd_days is None):
            raise _fail("serial_interval_mean_days", "give the serial interval's mean and standard deviation together")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# directives — escalation of overdue tasks, deadlines of the loop's automatic tasks, problems found (added by the
# directives feature, issue 7; read by jingkong/command/rules.py).

DirectiveLevel = Literal["grid", "community", "street", "district"]
GraceHours = Annotated[int, Field(ge=0, le=168)]


class TaskEscalationHours(_Section):
    """Hours after its deadline that an unfinished task of each level escalates to the level above (0: at once)."""

    grid: GraceHours
    community: GraceHours
    street: GraceHours


class AutoTaskHours(_Section):
    """Deadline, in hours from creation, of each kind of task the loop creates by itself."""

    sweep_untested: Hours
    retest_pool: Hours
    locate_contact: Hours
    deliver: Hours


class UrgencyHours(_Section):
    normal: Hours
    urgent: Hours
    critical: Hours


class UrgencyLevels(_Section):
    normal: DirectiveLevel
    urgent: DirectiveLevel
    critical: DirectiveLevel


class ProblemRouting(_Section):
    """Which level a problem found goes to: the higher of the level named for its category and for its urgency
    (categories not listed: ``default_level``). Identifiers match command.ProblemCategory / command.Urgency."""

    default_level: DirectiveLevel
    by_category: dict[Literal["movement_in_lockdown", "unmanned_post", "queue_too_long", "supply_shortage",
                              "data_error", "other"], DirectiveLevel] = Field(max_length=6)
    by_urgency: UrgencyLevels


class DirectiveRules(_Section):
    """指令一贯到底: when overdue tasks escalate, deadlines of automatic tasks, problem deadlines and routing."""

    task_escalation_hours: TaskEscalationHours
    auto_task_hours: AutoTaskHours
    problem_hours_by_urgency: UrgencyHours
    problem_escalation_hours: GraceHours = Field(
        description="Hours after its deadline that an unresolved problem moves up one level (new deadline from then).")
    problem_routing: ProblemRouting

    @model_validator(mode="after")
    def _urgent_first(self) -> DirectiveRules:
        h = self.problem_hours_by_urgency
        if not (h.critical <= h.urgent <= h.normal):
            raise _fail("problem_hours_by_urgency", "a more urgent problem cannot have a later deadline")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# isolation — quarantine facilities, room assignment, reserve and isolation orders (added with the facilities feature).


class IsolationReserve(_Section):
    """储备充足: free quarantine rooms a district keeps in reserve, and when to warn that they run out."""

    rooms_per_10k_residents: int | None = Field(
        default=None, ge=0, le=1000, description="Free rooms to keep per 10,000 residents; null: not used.")
    days_of_inflow: int | None = Field(
        default=None, ge=0, le=60, description="Free beds to keep, in days of the current inflow; null: not used.")
    inflow_window_days: PositiveDays = Field(description="Arrivals per day are averaged over these last days.")
    alert_threshold_days: PositiveDays = Field(description="Alert when free beds last fewer days than this.")

    @model_validator(mode="after")
    def _some_target(self) -> IsolationReserve:
        if self.rooms_per_10k_residents is None and self.days_of_inflow is None:
            raise _fail("rooms_per_10k_residents", "give a reserve target (rooms per 10,000 residents or days of inflow)")
        return self


class IsolationRules(_Section):
    """Facilities and orders: floor mixing, the reserve, extension after a positive room mate, symptom checks."""

    tiers_may_mix_on_floor: bool = Field(description="Close and secondary contacts may share a floor of a site.")
    reserve: IsolationReserve
    extension: Literal["restart_from_new_exposure", "none"] = Field(
        description="A room mate or household member of a new positive: the stage restarts from that exposure.")
    fever_threshold_c: float = Field(ge=36.0, le=40.0, description="A symptom check at or above this is a fever.")
    hospital_review_days: PositiveDays = Field(
        description="A designated-hospital order is reviewed after these days (discharge is a clinical decision).")


# ---------------------------------------------------------------------------------------------------------------------
# checkpoints — 卡口 verification and venue entry (测温+亮码+戴口罩) (added by the checkpoints feature, issue 5; read by
# jingkong/codes/checkpoint_rules.py).

Verdict = Literal["refer", "deny"]
CheckpointKindId = Literal["highway_exit", "road", "zone_boundary", "port"]  # identifiers match codes.CheckpointKind
PassKindId = Literal["medical", "essential_supply", "transfer", "official"]  # identifiers match codes.PassKind


class CheckpointRules(_Section):
    """What a checkpoint or venue device decides: allow, refer (to a second check, on-site sampling, the fever clinic)
    or deny (turned back)."""

    deny_colours: list[CodeColour] = Field(description="Code colours that are turned back (红码禁).")
    refer_colours: list[CodeColour] = Field(description="Code colours referred to a second check (黄码管).")
    negative_test_hours: Hours = Field(description="A negative test sampled at most this many hours before counts.")
    negative_test_kinds: list[CheckpointKindId] = Field(description="Checkpoint kinds that ask for a negative test.")
    negative_test_directions: list[Literal["in", "out"]] = Field(
        min_length=1, description="Directions of travel in which those checkpoints ask for it.")
    no_negative_test: Verdict = Field(description="Without a recent negative test.")
    origin_risk: dict[Literal["high", "medium"], Verdict] = Field(
        description="Arriving from a published high/medium-risk area (a level not listed: allowed).")
    no_exit_zone_types: list[ZoneType] = Field(description="Residents of these zones may not leave them (封控区).")
    zone_exit: Verdict = Field(description="A resident of such a zone leaving it.")
    flowing_pass_kinds: list[PassKindId] = Field(
        description="Passes (通行证) that keep a vehicle flowing whatever its occupants' checks say.")
    pass_driver_deny_colours: list[CodeColour] = Field(description="A driver of these colours stops even a pass.")
    pass_carries_denied_kinds: list[PassKindId] | None = Field(None, description=(
        "Passes whose vehicles may carry passengers who would be turned back (a patient, people taken to isolation). "
        "With the other flowing passes a passenger's deny stands (no one leaves a lockdown zone in a supply truck). "
        "Absent: medical and transfer."))
    expired_token: Verdict = Field(description="An expired code (ask for a fresh one or the ID card).")
    invalid_token: Verdict = Field(description="A forged, altered or unreadable code.")
    unknown_person: Verdict = Field(description="An ID number or code of nobody on the register.")
    fever_threshold_celsius: float = Field(ge=36.0, le=40.0, description="At or above: fever (yellow, fever clinic).")
    mask_required: bool = Field(description="Venue entry asks for a mask (戴口罩).")
    no_mask: Verdict = Field(description="Venue entry without a mask (when required).")

    @model_validator(mode="after")
    def _consistent(self) -> CheckpointRules:
        both = sorted(set(self.deny_colours) & set(self.refer_colours))
        if both:
            raise _fail("refer_colours", f"{both[0]!r} is both denied and referred")
        if "green" in self.deny_colours or "green" in self.refer_colours:
            raise _fail("deny_colours" if "green" in self.deny_colours else "refer_colours",
                        "'green' (no restriction) cannot be denied or referred")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# transfer — 快编组 · 快转运: where each tier goes and the figures the route planner uses (added by the transfer
# feature; read by jingkong/isolation/grouping.py and jingkong/isolation/transfers.py).

TransferDestination = Literal["hospital", "central", "home", "separate_site", "none"]  # identifiers: isolation.Destination


class TransferDestinations(_Section):
    """Destination type per tier: a case goes to the designated hospital; ``home`` means the person stays at home (a
    batch is recorded but no vehicle is sent); ``none``: the tier is not grouped at all."""

    case: Literal["hospital"]
    close: TransferDestination
    secondary: TransferDestination


class TransferRules(_Section):
    destination_by_tier: TransferDestinations
    case_transfer_hours: Hours = Field(description="A case is due at the designated hospital this many hours after "
                                                   "it was registered (contacts: quarantine.transfer_deadline_hours).")
    max_batch_size: Annotated[int, Field(ge=1, le=80)] = Field(
        description="A pickup point's group is split into batches of at most this many people (households whole).")
    detour_factor: Annotated[float, Field(ge=1.0, le=3.0)] = Field(
        description="Road distance ≈ great-circle distance × this factor when no road graph is loaded.")
    average_speed_kmh: Annotated[int, Field(ge=5, le=120)] = Field(description="Average vehicle speed, km/h.")
    pickup_minutes: Minutes = Field(description="Time at a pickup point (boarding, checks).")
    dropoff_minutes: Minutes = Field(description="Time at the destination (handover to the facility).")


# ---------------------------------------------------------------------------------------------------------------------
# The rule set.


class RulesIncomplete(Exception):
    """The active profile version has no value for a section a feature needs (it predates the section)."""


class PolicyRules(_Section):
    """One complete, validated rule set. See the module docstring for how to add a section."""

    contacts: ContactRules
    quarantine: QuarantineRules
    zones: ZoneRules
    testing: TestingRules
    health_codes: HealthCodeRules
    clock_targets: ClockTargets
    services: ServiceRules
    transmission: TransmissionRules | None = None  # added by the tracing feature (chains)
    checkpoints: CheckpointRules | None = None  # added by the checkpoints feature (issue 5)
    isolation: IsolationRules | None = None  # added by the facilities and orders feature
    directives: DirectiveRules | None = None  # added by the directives feature (issue 7)
    transfer: TransferRules | None = None  # added by the transfer feature (grouping and routing)

    @model_validator(mode="after")
    def _across_sections(self) -> PolicyRules:
        in_use = self.zones.types
        pooled = list(self.testing.default_pool_size_by_zone)
        missing = [z for z in in_use if z not in pooled]
        if missing:
            raise _fail(f"testing.default_pool_size_by_zone.{missing[0]}", "zone type in use has no default pool size")
        extra = [z for z in pooled if z not in in_use]
        if extra:
            raise _fail(f"testing.default_pool_size_by_zone.{extra[0]}", f"zone type not in use (zones.types: {in_use})")
        for i, zone in enumerate(self.testing.one_tube_per_household_zones):
            if zone not in in_use:
                raise _fail(f"testing.one_tube_per_household_zones[{i}]", f"zone type not in use (zones.types: {in_use})")
        return self

    def section(self, name: str) -> Any:
        """Return a section a feature needs, or raise :class:`RulesIncomplete` if this version lacks it."""
        if name not in type(self).model_fields:
            raise KeyError(name)
        value = getattr(self, name)
        if value is None:
            raise RulesIncomplete(
                f"the active policy profile has no {name!r} rules; install and activate a newer version "
                "(jingkong policy install; jingkong policy activate CODE --region ... --reason ...)"
            )
        return value


# ---------------------------------------------------------------------------------------------------------------------
# The profile document (the shipped JSON files and the API's create payload).


class LocalizedText(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    zh: str = Field(min_length=1, max_length=2000)
    en: str = Field(min_length=1, max_length=2000)


class LocalizedSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    zh: str = Field(default="", max_length=4000)
    en: str = Field(default="", max_length=4000)


class SourceNote(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    status: Provenance
    ref: str = Field(min_length=1, max_length=500, description="Where it comes from (section of policy_rules.md, URL).")
    note: str = Field(default="", max_length=1000)


CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"


class ProfileDocument(BaseModel):
    """A profile as shipped (``profiles/*.json``) or posted: header, rules and per-value provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=CODE_PATTERN, description="Stable code, e.g. 'cn-8th-2021'.")
    edition: str = Field(min_length=1, max_length=32)
    name: LocalizedText
    issued_on: dt.date
    valid_from: dt.date
    summary: LocalizedSummary = Field(default_factory=LocalizedSummary)
    rules: PolicyRules
    sources: dict[str, SourceNote] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sources_point_at_values(self) -> ProfileDocument:
        known = rule_paths(self.rules.model_dump(mode="json"), include_nodes=True)
        for key in self.sources:
            if key not in known:
                raise _fail(f"sources.{key}", "no such rule path (write e.g. 'quarantine.close_contact.central_days')")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# Paths and error reports.


def rule_values(data: Any, prefix: str = "") -> dict[str, Any]:
    """The values of a rules dict by dotted path (same paths as :func:`rule_paths`)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(rule_values(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, value in enumerate(data):
            out.update(rule_values(value, f"{prefix}[{i}]"))
    else:
        out[prefix] = data
    return out


def rule_paths(data: Any, *, include_nodes: bool = False, prefix: str = "") -> set[str]:
    """Dotted paths of the values in a rules dict: lists of objects are indexed (``rules[0]``), other lists are values."""
    out: set[str] = set()
    if isinstance(data, dict):
        if include_nodes and prefix:
            out.add(prefix)
        for key, value in data.items():
            out |= rule_paths(value, include_nodes=include_nodes, prefix=f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        if include_nodes and prefix:
            out.add(prefix)
        for i, value in enumerate(data):
            out |= rule_paths(value, include_nodes=include_nodes, prefix=f"{prefix}[{i}]")
    else:
        out.add(prefix)
    return out


def source_for(sources: dict[str, Any], path: str) -> Any | None:
    """The provenance entry covering ``path``: its own, or the nearest enclosing subtree's."""
    probe = path
    while probe:
        if probe in sources:
            return sources[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return None


@dataclass(frozen=True)
class RuleError:
    """One validation failure: the JSON path of the offending value and why."""

    path: str
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.path or '(document)'}: {self.reason}"


def _join(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def rule_errors(exc: ValidationError, *, root: str = "") -> list[RuleError]:
    """Flatten a pydantic error into ``RuleError``s, placing cross-field errors on the value they concern."""
    errors = []
    for err in exc.errors(include_url=False):
        path = _join(err["loc"])
        extra = (err.get("ctx") or {}).get("path") if err["type"] == "policy_rule" else None
        if extra:
            path = f"{path}.{extra}" if path else extra
        if root:
            path = f"{root}.{path}" if path else root
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key (not part of the rules schema)"
        elif err["type"] == "missing":
            reason = "required value is missing"
        elif "[key]" in err["loc"]:
            reason = f"invalid key: {reason}"
        errors.append(RuleError(path=path.replace(".[", "["), reason=reason))
    return errors


def validate_rules(data: Any) -> tuple[PolicyRules | None, list[RuleError]]:
    """Validate a bare rule set (a dict as read from JSON)."""
    try:
        return PolicyRules.model_validate(data), []
    except ValidationError as exc:
        return None, rule_errors(exc)


def validate_document(data: Any) -> tuple[ProfileDocument | None, list[RuleError]]:
    """Validate a profile document (header + rules + sources)."""
    try:
        return ProfileDocument.model_validate(data), []
    except ValidationError as exc:
        return None, rule_errors(exc)


def validate_any(data: Any) -> tuple[PolicyRules | ProfileDocument | None, list[RuleError]]:
    """A document when the top level has ``rules``; otherwise a bare rule set."""
    if isinstance(data, dict) and "rules" in data:
        return validate_document(data)
    return validate_rules(data)
