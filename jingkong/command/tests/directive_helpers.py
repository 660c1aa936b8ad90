"""Test data of the directives area: a policy in force, field workers, directives and tasks (import the fixtures
into a test module: ``from jingkong.command.tests.directive_helpers import *``-style explicit imports)."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest

from jingkong.conftest import T0

_serial = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    from jingkong.command import problems
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    problems.locator_reset()
    yield
    active_profile_cache_clear()
    problems.locator_reset()


@pytest.fixture
def now():
    from jingkong.core import clock

    with clock.frozen(T0) as at:
        yield at


@pytest.fixture
def policy(regions):
    return activate_policy(regions)


@pytest.fixture
def photos_dir(tmp_path, settings):
    settings.DATA_DIR = tmp_path
    return tmp_path


def activate_policy(regions, code: str = "cn-8th-2021"):
    from jingkong.policy.selectors import profile_get
    from jingkong.policy.services import profile_activate, profile_install_builtin

    profile_install_builtin()
    return profile_activate(profile=profile_get(code=code), region=regions["district"], actor=None,
                            reason="tests", at=T0 - dt.timedelta(days=1))


def make_worker(region, *, role: str = "grid_worker", name: str = "", user=None, buildings=()):
    from jingkong.command.models import FieldWorker

    w = FieldWorker.objects.create(name=name or f"网格员{next(_serial)}", role=role, region_code=region.code,
                                   phone="13900001111", user=user)
    if buildings:
        w.buildings.set(buildings)
    return w


def make_building(grid, code: str = ""):
    from jingkong.geo.models import Building

    return Building.objects.create(code=code or f"B-{grid.code}-{next(_serial)}", grid=grid,
                                   address=f"{grid.name}{next(_serial)}号楼", lon=grid.center_lon,
                                   lat=grid.center_lat)


def issue(user, regions_codes, *, hours: int = 24, title: str = "全员核酸扫楼", at=None, attachments=None):
    from jingkong.access.guard import scope_of
    from jingkong.command.directives import directive_issue
    from jingkong.core import clock

    at = at or clock.now()
    return directive_issue(actor=user, scope=scope_of(user), title=title, text="今日18点前完成", category="sampling_sweep",
                           region_codes=list(regions_codes), deadline=at + dt.timedelta(hours=hours),
                           attachments_in=attachments or [])


def upload(data: bytes = PNG, name: str = "photo.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


def as_file(data: bytes = PNG, name: str = "photo.png"):
    f = io.BytesIO(data)
    f.name = name
    return f
