from __future__ import annotations

from jingkong.access.roles import ROLE_PERMISSIONS, Perm, Role, role_has, roles_with


def test_every_role_has_a_permission_set_and_its_own_account():
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert roles_with(Perm.ACCOUNT) == [r.value for r in Role]


def test_phone_numbers_only_for_roles_that_call_residents():
    assert set(roles_with(Perm.PERSON_VIEW_PHONE)) == {
        Role.COMMUNITY_OFFICER, Role.GRID_WORKER, Role.TRACER, Role.TRANSFER_DISPATCHER, Role.FACILITY_MANAGER,
    }
    # Every role that may see a phone may see the person too.
    assert all(role_has(r, Perm.PERSON_VIEW) for r in roles_with(Perm.PERSON_VIEW_PHONE))


def test_field_roles_without_person_access():
    for role in (Role.ANALYST, Role.SAMPLER, Role.LAB_TECHNICIAN, Role.CHECKPOINT_OFFICER, Role.SERVICE_VOLUNTEER):
        assert not role_has(role, Perm.PERSON_VIEW), role
    assert not role_has("no-such-role", Perm.MAP_VIEW)
