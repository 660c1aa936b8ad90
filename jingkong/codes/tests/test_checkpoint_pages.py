"""The checkpoint and venue-entry pages: they render (English and Chinese), the officer's verify page and the venue
page decide and log, passes are issued and revoked, referrals are followed up, street B's pages are not found."""

from __future__ import annotations

import pytest

from jingkong.codes.models import Checkpoint, Crossing, FeverReferral, Pass, VenueEntry
from jingkong.codes.tests.checkpoint_helpers import NOW, a_pass, activate, checkpoint, resident, venue
from jingkong.conftest import make_user
from jingkong.core import clock

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now():
    from jingkong.policy.selectors import active_profile_cache_clear

    active_profile_cache_clear()
    with clock.frozen(NOW):
        yield
    active_profile_cache_clear()


@pytest.fixture
def world(regions, officer_a, client_for, tmp_path, settings):
    settings.DATA_DIR = tmp_path
    activate()
    checkpoint(regions["street_a"], "CP-A1", kind="highway_exit")
    venue(regions["grid_a1"], "V-A1")
    return {"regions": regions, "client": client_for(officer_a)}


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_the_pages_render(world, lang):
    c = world["client"]
    c.cookies["django_language"] = lang
    _, number = resident(world["regions"]["grid_a1"], colour="red")
    c.post("/codes/checkpoints/CP-A1/verify/", {"subject": "person", "who": number, "direction": "in"})
    for url in ("/codes/checkpoints/", "/codes/checkpoints/CP-A1/", "/codes/checkpoints/CP-A1/verify/",
                "/codes/checkpoints/passes/", "/codes/venues/", "/codes/venues/V-A1/", "/codes/venues/referrals/",
                "/codes/checkpoints/?day=2022-01-10&kind=highway_exit", "/codes/checkpoints/CP-A1/?decision=deny"):
        r = c.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert b'name="viewport"' in r.content
    board = c.get("/codes/checkpoints/CP-A1/").content.decode()
    assert "CP-A1" in board and "cp-badge deny" in board


def _form_id(page) -> str:
    import re

    return re.search(r'name="client_id" value="([^"]+)"', page.content.decode()).group(1)


def test_the_verify_page_decides_and_logs(world):
    c = world["client"]
    url = "/codes/checkpoints/CP-A1/verify/"
    _, green = resident(world["regions"]["grid_a1"])

    def submit(data):
        return c.post(url, {**data, "client_id": _form_id(c.get(url))})

    r = submit({"subject": "person", "who": green, "direction": "out"})
    assert r.status_code == 200 and b"cp-verdict allow" in r.content
    r = submit({"subject": "person", "who": green, "direction": "in", "origin_code": "440305"})
    assert b"cp-verdict refer" in r.content  # a highway exit, inbound, without a negative test
    a_pass("浙B12345", "medical")
    r = submit({"subject": "vehicle", "plate": "浙B12345", "driver": green, "passengers": f"{green}\n",
                "direction": "in"})
    assert b"cp-verdict allow" in r.content and "TX-1" in r.content.decode()
    assert Crossing.objects.count() == 3
    r = submit({"subject": "person", "who": "12345"})
    assert r.status_code == 200 and b"cp-messages" in r.content and Crossing.objects.count() == 3
    # the same form sent twice (a double tap) logs one crossing
    form = _form_id(c.get(url))
    for _ in range(2):
        assert b"cp-verdict allow" in c.post(url, {"subject": "person", "who": green, "client_id": form}).content
    assert Crossing.objects.count() == 4


def test_checkpoints_are_added_from_the_list_page(world):
    c = world["client"]
    r = c.post("/codes/checkpoints/new/", {"code": "CP-NEW", "name": "新卡口", "kind": "road",
                                           "region_code": "330206002", "lon": "121.81", "lat": "29.90"})
    assert r.status_code == 302 and Checkpoint.objects.filter(code="CP-NEW").exists()
    r = c.post("/codes/checkpoints/new/", {"code": "CP-B", "name": "x", "kind": "road", "region_code": "330206004",
                                           "lon": "121.81", "lat": "29.90"}, follow=True)
    assert not Checkpoint.objects.filter(code="CP-B").exists() and b"cp-messages" in r.content
    r = c.post("/codes/checkpoints/new/", {"code": "CP-X", "name": "x", "kind": "road", "region_code": "330206002",
                                           "lon": "east", "lat": "29.90"})
    assert r.status_code == 302 and not Checkpoint.objects.filter(code="CP-X").exists()


def test_passes_are_issued_and_revoked(world):
    c = world["client"]
    r = c.post("/codes/checkpoints/passes/issue/", {"kind": "essential_supply", "plate": "浙b 66666", "holder": "张师傅",
                                                    "valid_until": "2022-01-17T18:00"})
    assert r.status_code == 302
    p = Pass.objects.get()
    assert (p.plate, p.kind, p.region_code) == ("浙B66666", "essential_supply", "330206002")
    assert p.number in c.get("/codes/checkpoints/passes/?plate=浙B66").content.decode()
    c.post(f"/codes/checkpoints/passes/{p.number}/revoke/", {"reason": "车辆更换"})
    p.refresh_from_db()
    assert p.revoked_at is not None


def test_the_venue_page_measures_and_refers(world):
    c = world["client"]
    person, number = resident(world["regions"]["grid_a1"])
    r = c.post("/codes/venues/V-A1/", {"who": number, "temperature": "38.0", "masked": "yes",
                                       "client_id": _form_id(c.get("/codes/venues/V-A1/"))})
    assert r.status_code == 200 and b"cp-verdict refer" in r.content
    assert VenueEntry.objects.count() == 1 and FeverReferral.objects.filter(person=person).exists()
    r = c.post("/codes/venues/V-A1/", {"who": number, "temperature": "hot"})
    assert b"cp-messages" in r.content and VenueEntry.objects.count() == 1
    listed = c.get("/codes/venues/referrals/").content.decode()
    assert person.name in listed
    ref = FeverReferral.objects.get()
    assert c.post(f"/codes/venues/referrals/{ref.pk}/status/", {"status": "cleared"}).status_code == 302
    ref.refresh_from_db()
    assert ref.status == "cleared"
    assert c.get("/codes/venues/?q=V-A1").status_code == 302  # an exact code opens the venue


def test_street_b_pages_are_not_found_for_street_a(world, regions, client_for):
    checkpoint(regions["street_b"], "CP-B1")
    venue(regions["grid_b1"], "V-B1")
    c = world["client"]
    for url in ("/codes/checkpoints/CP-B1/", "/codes/checkpoints/CP-B1/verify/", "/codes/venues/V-B1/"):
        assert c.get(url).status_code == 404, url
    assert c.post("/codes/checkpoints/CP-B1/verify/", {"who": "x"}).status_code == 404
    assert "CP-B1" not in c.get("/codes/checkpoints/").content.decode()


def test_a_checkpoint_officer_sees_only_their_checkpoints(world, regions, client_for):
    officer = make_user("cp_officer", "checkpoint_officer", regions["street_a"])
    checkpoint(regions["street_a"], "CP-MINE", staff=[officer])
    c = client_for(officer)
    page = c.get("/codes/checkpoints/").content.decode()
    assert "CP-MINE" in page and "CP-A1" not in page
    assert c.get("/codes/checkpoints/CP-A1/verify/").status_code == 403
    assert c.get("/codes/checkpoints/passes/").status_code == 403
    assert c.get("/codes/venues/referrals/").status_code == 403
