"""Roles and what each may do. Region scope is separate: every role acts only inside the user's region subtree.

Principles behind :data:`ROLE_PERMISSIONS`:

* Person-level data (names, ID numbers, phones, addresses, who-lives-where) is seen only by roles whose work is with
  individual people: officers, grid workers, tracers, transfer dispatchers, facility managers, the commander and the
  administrator. Analysts, samplers, lab technicians, checkpoint officers and volunteers see the map and aggregates.
* The domain event stream names individual records (a person created in grid X), so it counts as person-level data.
* Every role may look at its own account and manage its own API tokens (:attr:`Perm.ACCOUNT`).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    COMMANDER = "commander", _("commander")
    ANALYST = "analyst", _("analyst")
    STREET_OFFICER = "street_officer", _("street officer")
    COMMUNITY_OFFICER = "community_officer", _("community officer")
    GRID_WORKER = "grid_worker", _("grid worker")
    SAMPLER = "sampler", _("sampler")
    LAB_TECHNICIAN = "lab_technician", _("lab technician")
    TRACER = "tracer", _("tracer")
    TRANSFER_DISPATCHER = "transfer_dispatcher", _("transfer dispatcher")
    FACILITY_MANAGER = "facility_manager", _("facility manager")
    CHECKPOINT_OFFICER = "checkpoint_officer", _("checkpoint officer")
    SERVICE_VOLUNTEER = "service_volunteer", _("service volunteer")
    ADMINISTRATOR = "administrator", _("administrator")


class Perm:
    """Permission names. A route declares exactly one; :data:`ROLE_PERMISSIONS` says which roles hold it."""

    ACCOUNT = "account.self"  # one's own profile and API tokens (every role)
    MAP_VIEW = "map.view"  # base map, region tree, aggregate counts
    MAP_EDIT = "map.edit"  # import/edit regions, buildings, venues
    PERSON_VIEW = "person.view"  # person lists and details (audited)
    PERSON_VIEW_PHONE = "person.view_phone"  # unmasked phone numbers
    PERSON_EDIT = "person.edit"  # create/update persons, imports
    POLICY_VIEW = "policy.view"
    POLICY_EDIT = "policy.edit"  # activate/add policy profiles
    AUDIT_VIEW = "audit.view"  # read and export the audit log
    USER_ADMIN = "user.admin"  # create users, manage other users' tokens (inside one's scope)
    JOB_RUN = "job.run"  # start long jobs (imports, recomputes)
    EVENT_VIEW = "event.view"  # the domain event stream (names individual records: person-level)
    # 快检测 testing. Person-level testing lists (untested people, pool-positive follow-up) also need PERSON_VIEW.
    TESTING_VIEW = "testing.view"  # campaign progress, coverage counts, site/lab boards, turnaround (aggregates)
    TESTING_PLAN = "testing.plan"  # create/edit campaigns, sampling sites, labs, staff and building assignments
    TESTING_SAMPLE = "testing.sample"  # scan swabs into tubes, seal tubes, pack/hand over transport batches
    TESTING_RESULT = "testing.result"  # receive batches at a lab, enter/upload tube results
    # 快流调 tracing: cases, timelines, contacts, chains (person-level: holders also hold PERSON_VIEW).
    TRACING_VIEW = "tracing.view"
    TRACING_EDIT = "tracing.edit"
    # 三区 zones and risk areas. Zone maps and counts are aggregates; residents lists also need PERSON_VIEW.
    ZONES_VIEW = "zones.view"
    ZONES_EDIT = "zones.edit"  # propose zones, edit proposals, import other places' risk-area lists
    ZONES_APPROVE = "zones.approve"  # approve, upgrade, downgrade and lift zones; publish risk areas
    # 健康码 health codes: a person's colour with its reasons (person-level), and manual overrides.
    CODES_VIEW = "codes.view"
    CODES_OVERRIDE = "codes.override"
    CODES_RECOMPUTE = "codes.recompute"  # full recompute, signing-key rotation
    # 卡口 checkpoints and venue entry.
    CHECKPOINT_VERIFY = "checkpoint.verify"  # verify people and vehicles, log crossings, venue entry scans
    CHECKPOINT_MANAGE = "checkpoint.manage"  # checkpoints, staff, passes (通行证)
    # 快编组·快转运·快隔离: grouping, transfer, facilities, isolation orders, the five-stage clock.
    ISOLATION_VIEW = "isolation.view"  # boards, routes, facility occupancy, the five-stage clock (aggregates)
    TRANSFER_EDIT = "transfer.edit"  # group contacts, vehicles, plan and run transfers
    FACILITY_EDIT = "facility.edit"  # facilities, rooms, assignments
    ISOLATION_EDIT = "isolation.edit"  # isolation orders, symptom checks, release
    # 指令 directives, tasks, problems; 暖服务 services and supplies.
    DASHBOARD_VIEW = "dashboard.view"  # the one-screen command view: aggregates, map layers, alerts, live stream

    COMMAND_VIEW = "command.view"  # directive chains and roll-ups, problem and service counts
    DIRECTIVE_ISSUE = "directive.issue"  # issue directives to one's own subtree
    TASK_WORK = "task.work"  # acknowledge, work and report one's tasks; reassign within one's scope
    PROBLEM_REPORT = "problem.report"  # report a problem found (every field role)
    PROBLEM_HANDLE = "problem.handle"  # route, work and resolve problems
    SERVICE_HANDLE = "service.handle"  # service requests: triage, assign, deliver (person-level)
    SUPPLY_EDIT = "supply.edit"  # stock, consumption, deliveries


ALL_PERMISSIONS: frozenset[str] = frozenset(
    value for name, value in vars(Perm).items() if name.isupper() and isinstance(value, str)
)

_BASE = {Perm.ACCOUNT, Perm.MAP_VIEW}
_FIELD = _BASE | {Perm.POLICY_VIEW}
_PERSON_READ = {Perm.PERSON_VIEW, Perm.PERSON_VIEW_PHONE}
# Officers see persons with masked phone numbers; only the roles that phone residents themselves (grid and community
# workers, tracers, transfer dispatchers, facility managers) see them in full.
_OFFICER = _FIELD | {Perm.PERSON_VIEW, Perm.PERSON_EDIT, Perm.EVENT_VIEW}

_TESTING_ALL = {Perm.TESTING_VIEW, Perm.TESTING_PLAN, Perm.TESTING_SAMPLE, Perm.TESTING_RESULT}
_TRACING_ALL = {Perm.TRACING_VIEW, Perm.TRACING_EDIT}
_ZONES_ALL = {Perm.ZONES_VIEW, Perm.ZONES_EDIT, Perm.ZONES_APPROVE}
_CODES_ALL = {Perm.CODES_VIEW, Perm.CODES_OVERRIDE, Perm.CODES_RECOMPUTE}
_CHECKPOINT_ALL = {Perm.CHECKPOINT_VERIFY, Perm.CHECKPOINT_MANAGE}
_ISOLATION_ALL = {Perm.ISOLATION_VIEW, Perm.TRANSFER_EDIT, Perm.FACILITY_EDIT, Perm.ISOLATION_EDIT}
_COMMAND_ALL = {Perm.COMMAND_VIEW, Perm.DIRECTIVE_ISSUE, Perm.TASK_WORK, Perm.PROBLEM_REPORT, Perm.PROBLEM_HANDLE,
                Perm.SERVICE_HANDLE, Perm.SUPPLY_EDIT}
# What every officer of a street or community does in the loop: zones proposed, codes looked up, directives issued
# to their own subtree, problems and services handled.
_OFFICER_LOOP = {Perm.DASHBOARD_VIEW,
                 Perm.ZONES_VIEW, Perm.ZONES_EDIT, Perm.CODES_VIEW, Perm.ISOLATION_VIEW, Perm.CHECKPOINT_MANAGE,
                 Perm.CHECKPOINT_VERIFY} | _COMMAND_ALL

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.COMMANDER: frozenset(_OFFICER | _TESTING_ALL | _TRACING_ALL | _ZONES_ALL | _CODES_ALL | _CHECKPOINT_ALL
                              | _ISOLATION_ALL | _COMMAND_ALL
                              | {Perm.POLICY_EDIT, Perm.AUDIT_VIEW, Perm.JOB_RUN, Perm.MAP_EDIT, Perm.DASHBOARD_VIEW}),
    # Aggregates only: no person lists, no event stream (it names individual records).
    Role.ANALYST: frozenset(_FIELD | {Perm.TESTING_VIEW, Perm.ZONES_VIEW, Perm.ISOLATION_VIEW, Perm.COMMAND_VIEW,
                                      Perm.DASHBOARD_VIEW}),
    # Officers organise the rounds in their street/community (campaigns, sites); they read cases and contacts,
    # propose zones, issue directives to their subtree and handle problems and services there.
    Role.STREET_OFFICER: frozenset(_OFFICER | _OFFICER_LOOP | {Perm.TESTING_VIEW, Perm.TESTING_PLAN,
                                                               Perm.TRACING_VIEW}),
    Role.COMMUNITY_OFFICER: frozenset(_OFFICER | _OFFICER_LOOP | {Perm.PERSON_VIEW_PHONE, Perm.TESTING_VIEW,
                                                                  Perm.TESTING_PLAN, Perm.TRACING_VIEW}),
    # Grid workers sweep their buildings for untested residents (扫楼), help locate contacts, work their tasks and
    # deliver services in their grid.
    Role.GRID_WORKER: frozenset(_OFFICER | {Perm.PERSON_VIEW_PHONE, Perm.TESTING_VIEW, Perm.TRACING_VIEW,
                                            Perm.ZONES_VIEW, Perm.CODES_VIEW, Perm.COMMAND_VIEW, Perm.TASK_WORK,
                                            Perm.PROBLEM_REPORT, Perm.SERVICE_HANDLE, Perm.DASHBOARD_VIEW}),
    # Samplers scan and see their site's progress, not person lists; lab technicians likewise for their lab.
    Role.SAMPLER: frozenset(_FIELD | {Perm.TESTING_VIEW, Perm.TESTING_SAMPLE, Perm.PROBLEM_REPORT}),
    Role.LAB_TECHNICIAN: frozenset(_FIELD | {Perm.TESTING_VIEW, Perm.TESTING_RESULT, Perm.PROBLEM_REPORT}),
    Role.TRACER: frozenset(_FIELD | _PERSON_READ | _TRACING_ALL | {Perm.EVENT_VIEW, Perm.TESTING_VIEW,
                                                                  Perm.DASHBOARD_VIEW,
                                                                  Perm.ZONES_VIEW, Perm.ZONES_EDIT, Perm.CODES_VIEW,
                                                                  Perm.ISOLATION_VIEW, Perm.PROBLEM_REPORT}),
    Role.TRANSFER_DISPATCHER: frozenset(_FIELD | _PERSON_READ | {Perm.TRACING_VIEW, Perm.ISOLATION_VIEW,
                                                                 Perm.TRANSFER_EDIT, Perm.PROBLEM_REPORT,
                                                                 Perm.DASHBOARD_VIEW}),
    Role.FACILITY_MANAGER: frozenset(_FIELD | _PERSON_READ | {Perm.ISOLATION_VIEW, Perm.FACILITY_EDIT,
                                                              Perm.ISOLATION_EDIT, Perm.PROBLEM_REPORT,
                                                              Perm.SUPPLY_EDIT, Perm.DASHBOARD_VIEW}),
    # Checkpoint officers verify people and vehicles; the verification answer (colour and reasons) is all they see.
    Role.CHECKPOINT_OFFICER: frozenset(_FIELD | {Perm.CHECKPOINT_VERIFY, Perm.ZONES_VIEW, Perm.PROBLEM_REPORT}),
    # Volunteers see only the tasks and service requests assigned to them.
    Role.SERVICE_VOLUNTEER: frozenset(_BASE | {Perm.TASK_WORK, Perm.PROBLEM_REPORT}),
    Role.ADMINISTRATOR: frozenset(
        _OFFICER | _TESTING_ALL | _TRACING_ALL | _ZONES_ALL | _CODES_ALL | _CHECKPOINT_ALL | _ISOLATION_ALL
        | _COMMAND_ALL
        | {Perm.MAP_EDIT, Perm.POLICY_EDIT, Perm.AUDIT_VIEW, Perm.USER_ADMIN, Perm.JOB_RUN, Perm.DASHBOARD_VIEW}
    ),
}


def role_has(role: str, perm: str) -> bool:
    return perm in ROLE_PERMISSIONS.get(role, frozenset())


def permissions_of(role: str) -> list[str]:
    """The role's permissions, sorted (for display and the ``/access/me`` answer)."""
    return sorted(ROLE_PERMISSIONS.get(role, frozenset()))


def roles_with(perm: str) -> list[str]:
    """The roles that hold ``perm``, in declaration order."""
    return [role.value for role in Role if perm in ROLE_PERMISSIONS.get(role, frozenset())]


def roles_without(perm: str) -> list[str]:
    return [role.value for role in Role if perm not in ROLE_PERMISSIONS.get(role, frozenset())]
