"""Shared test fixtures: a tiny region tree and named personas (the pattern of healthchecks' alice/bob/charlie).

* ``regions``: district 330206 → streets 330206002 (新碶) and 330206004 (大碶) → one community each → two grids each.
* Personas: ``commander`` (district), ``officer_a`` (street A), ``officer_b`` (street B), ``grid_worker_a`` (a grid of
  street A), ``volunteer_a`` (service volunteer, street A), ``admin_user`` (administrator, whole platform).
* ``client_for(user)`` gives a Django test client logged in as that user; ``bearer(user)`` an Authorization header.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from jingkong.core import clock

T0 = dt.datetime(2022, 1, 1, 8, 30, tzinfo=dt.UTC)


def _square(lon: float, lat: float, size: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]],
    }


def make_region(code, name, level, parent=None, geometry=None):
    from jingkong.geo.models import Region

    bbox = {}
    if geometry:
        ring = geometry["coordinates"][0]
        lons = [p[0] for p in ring]
        lats = [p[1] for p in ring]
        bbox = dict(
            min_lon=min(lons), max_lon=max(lons), min_lat=min(lats), max_lat=max(lats),
            center_lon=(min(lons) + max(lons)) / 2, center_lat=(min(lats) + max(lats)) / 2,
        )
    return Region.objects.create(code=code, name=name, level=level, parent=parent, geometry=geometry, **bbox)


@pytest.fixture
def frozen_clock():
    with clock.frozen(T0) as at:
        yield at


@pytest.fixture
def regions(db):
    """A small district: 2 streets side by side, each with 1 community of 2 grids (0.01° squares)."""
    d = make_region("330206", "北仑区", "district", geometry=_square(121.80, 29.90, 0.04))
    out = {"district": d}
    for key, street_code, street_name, lon in (("a", "330206002", "新碶街道", 121.80), ("b", "330206004", "大碶街道", 121.82)):
        s = make_region(street_code, street_name, "street", d, _square(lon, 29.90, 0.02))
        c = make_region(street_code + "001", f"{street_name}一社区", "community", s, _square(lon, 29.90, 0.02))
        g1 = make_region(c.code + "001", "第一网格", "grid", c, _square(lon, 29.90, 0.01))
        g2 = make_region(c.code + "002", "第二网格", "grid", c, _square(lon + 0.01, 29.90, 0.01))
        out.update({f"street_{key}": s, f"community_{key}": c, f"grid_{key}1": g1, f"grid_{key}2": g2})
    return out


def make_user(username, role, region, **extra):
    from jingkong.access.models import User

    return User.objects.create_user(username=username, password="pw-" + username + "-123", role=role, region=region, **extra)


@pytest.fixture
def commander(regions):
    return make_user("commander", "commander", regions["district"])


@pytest.fixture
def officer_a(regions):
    return make_user("officer_a", "street_officer", regions["street_a"])


@pytest.fixture
def officer_b(regions):
    return make_user("officer_b", "street_officer", regions["street_b"])


@pytest.fixture
def grid_worker_a(regions):
    return make_user("grid_worker_a", "grid_worker", regions["grid_a1"])


@pytest.fixture
def volunteer_a(regions):
    return make_user("volunteer_a", "service_volunteer", regions["street_a"])


@pytest.fixture
def admin_user(regions):
    return make_user("admin", "administrator", None, is_staff=True, is_superuser=True)


@pytest.fixture
def client_for(db):
    def make(user) -> Client:
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return make


@pytest.fixture
def bearer(db):
    def make(user) -> dict:
        from jingkong.access.services import token_create

        _, token = token_create(user=user, name="test", actor=user)
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    return make
