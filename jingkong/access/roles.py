"""Roles and what each may do. Region scope is separate: every role acts only inside the user's region subtree."""

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

    MAP_VIEW = "map.view"  # base map, region tree, aggregate counts
    MAP_EDIT = "map.edit"  # import/edit regions, buildings, venues
    PERSON_VIEW = "person.view"  # person lists and details (audited)
    PERSON_VIEW_PHONE = "person.view_phone"  # unmasked phone numbers
    PERSON_EDIT = "person.edit"  # create/update persons, imports
    POLICY_VIEW = "policy.view"
    POLICY_EDIT = "policy.edit"  # activate/add policy profiles
    AUDIT_VIEW = "audit.view"  # read and export the audit log
    USER_ADMIN = "user.admin"  # create users and tokens
    JOB_RUN = "job.run"  # start long jobs (imports, recomputes)
    EVENT_VIEW = "event.view"  # the domain event stream


_FIELD = {Perm.MAP_VIEW, Perm.POLICY_VIEW}
_OFFICER = _FIELD | {Perm.PERSON_VIEW, Perm.PERSON_VIEW_PHONE, Perm.PERSON_EDIT, Perm.EVENT_VIEW}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.COMMANDER: frozenset(_OFFICER | {Perm.POLICY_EDIT, Perm.AUDIT_VIEW, Perm.JOB_RUN, Perm.MAP_EDIT}),
    Role.ANALYST: frozenset(_FIELD | {Perm.EVENT_VIEW}),
    Role.STREET_OFFICER: frozenset(_OFFICER),
    Role.COMMUNITY_OFFICER: frozenset(_OFFICER),
    Role.GRID_WORKER: frozenset(_OFFICER),
    Role.SAMPLER: frozenset(_FIELD),
    Role.LAB_TECHNICIAN: frozenset(_FIELD),
    Role.TRACER: frozenset(_FIELD | {Perm.PERSON_VIEW, Perm.PERSON_VIEW_PHONE, Perm.EVENT_VIEW}),
    Role.TRANSFER_DISPATCHER: frozenset(_FIELD | {Perm.PERSON_VIEW, Perm.PERSON_VIEW_PHONE}),
    Role.FACILITY_MANAGER: frozenset(_FIELD | {Perm.PERSON_VIEW, Perm.PERSON_VIEW_PHONE}),
    Role.CHECKPOINT_OFFICER: frozenset(_FIELD),
    Role.SERVICE_VOLUNTEER: frozenset({Perm.MAP_VIEW}),
    Role.ADMINISTRATOR: frozenset(
        _OFFICER | {Perm.MAP_EDIT, Perm.POLICY_EDIT, Perm.AUDIT_VIEW, Perm.USER_ADMIN, Perm.JOB_RUN}
    ),
}


def role_has(role: str, perm: str) -> bool:
    return perm in ROLE_PERMISSIONS.get(role, frozenset())
