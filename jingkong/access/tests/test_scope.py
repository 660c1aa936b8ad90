"""Scope and role semantics (pure where possible)."""

from __future__ import annotations

import pytest

from jingkong.access.guard import EVERYTHING, NOTHING, Scope, require, scope_of
from jingkong.access.models import User
from jingkong.access.roles import ALL_PERMISSIONS, ROLE_PERMISSIONS, Perm, Role, role_has


def test_a_scope_is_a_code_prefix():
    street = Scope("330206002")
    assert street.contains("330206002") and street.contains("330206002001001")
    assert not street.contains("330206004001") and not street.contains("330206") and not street.contains(None)
    assert EVERYTHING.contains("") and EVERYTHING.contains("330206004")
    assert not NOTHING.contains("330206002") and not NOTHING.contains("")


def test_covers_compares_subtrees():
    assert Scope("330206").covers(Scope("330206002")) and EVERYTHING.covers(Scope("330206"))
    assert not Scope("330206002").covers(Scope("330206")) and not Scope("330206002").covers(EVERYTHING)
    assert not NOTHING.covers(NOTHING) and not EVERYTHING.covers(NOTHING)


def test_check_answers_not_found_outside():
    from jingkong.core.exceptions import NotFound

    Scope("330206002").check("330206002001", "person")
    with pytest.raises(NotFound, match="person not found"):
        Scope("330206002").check("330206004001", "person")


@pytest.mark.django_db
def test_scope_filters_querysets(regions):
    from jingkong.geo.models import Region

    codes = set(Scope("330206004").filter(Region.objects.all(), "code").values_list("code", flat=True))
    assert codes == {"330206004", "330206004001", "330206004001001", "330206004001002"}
    assert NOTHING.filter(Region.objects.all(), "code").count() == 0
    assert EVERYTHING.filter(Region.objects.all(), "code").count() == 9


@pytest.mark.django_db
def test_scope_of_users(regions, commander, officer_a, admin_user):
    assert scope_of(commander) == Scope("330206")
    assert scope_of(officer_a) == Scope("330206002")
    assert scope_of(admin_user) == EVERYTHING  # administrator without a region: platform-wide
    assert scope_of(None) == NOTHING
    no_region = User(username="x", role=Role.STREET_OFFICER, region=None)
    assert scope_of(no_region) == NOTHING  # anyone else without a region sees nothing
    officer_a.is_active = False
    assert scope_of(officer_a) == NOTHING
    scoped_admin = User(username="y", role=Role.ADMINISTRATOR, region=regions["street_b"], is_superuser=True)
    assert scope_of(scoped_admin) == Scope("330206004")  # a region always narrows, superuser or not


def test_roles_are_all_configured_and_use_known_permissions():
    assert set(ROLE_PERMISSIONS) == set(Role.values)
    for role, perms in ROLE_PERMISSIONS.items():
        assert perms <= ALL_PERMISSIONS, role
        assert Perm.ACCOUNT in perms, role


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SAMPLER, Role.LAB_TECHNICIAN, Role.CHECKPOINT_OFFICER,
                                  Role.SERVICE_VOLUNTEER])
def test_roles_without_person_level_work_see_no_person_level_data(role):
    for perm in (Perm.PERSON_VIEW, Perm.PERSON_VIEW_PHONE, Perm.PERSON_EDIT, Perm.EVENT_VIEW, Perm.AUDIT_VIEW):
        assert not role_has(role, perm), (role, perm)


def test_only_administrators_administer_users():
    assert [r for r in Role.values if role_has(r, Perm.USER_ADMIN)] == [Role.ADMINISTRATOR]


def test_require_rejects_unknown_permissions_and_wrong_decorator_order():
    with pytest.raises(ValueError, match="unknown permission"):
        require("person.veiw")
    from ninja import Router

    router = Router()

    @router.get("/x")
    def view(request):  # pragma: no cover
        return {}

    with pytest.raises(TypeError, match="put it below"):
        require(Perm.MAP_VIEW)(view)
