from __future__ import annotations

import pytest

from jingkong.zones.models import Zone

pytestmark = pytest.mark.django_db


def test_list_detail_and_actions_pages(town, case, officer_a, commander, client_for):
    c = client_for(officer_a)
    page = c.get("/zones/propose/")
    assert page.status_code == 200
    r = c.post("/zones/propose/", {"case": case.ref})
    assert r.status_code == 302
    lock = Zone.objects.get(type="lockdown")
    listing = c.get("/zones/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert lock.ref in text and "xstatic/leaflet/leaflet.js" in text and "zn-map-config" in text
    detail = c.get(f"/zones/z/{lock.ref}/")
    assert detail.status_code == 200 and "entrance" in detail.content.decode()
    assert 'action="/zones/z/' + lock.ref + '/approve/"' not in detail.content.decode()  # not a commander
    assert c.post(f"/zones/z/{lock.ref}/approve/", {}).status_code == 403
    cc = client_for(commander)
    assert 'action="/zones/z/' + lock.ref + '/approve/"' in cc.get(f"/zones/z/{lock.ref}/").content.decode()
    assert cc.post(f"/zones/z/{lock.ref}/approve/", {"reason": ""}).status_code == 302
    lock.refresh_from_db()
    assert lock.status == "approved"
    detail = cc.get(f"/zones/z/{lock.ref}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "new_infection" in detail and "<td>approved</td>" in detail  # blockers and history
    r = cc.post(f"/zones/z/{lock.ref}/lift/", {"reason": ""})
    assert r.status_code == 422
    assert cc.post(f"/zones/z/{lock.ref}/explode/", {"reason": "x"}).status_code == 404
    assert cc.post(f"/zones/z/{lock.ref}/lift/", {"reason": "解封"}).status_code == 302
    lock.refresh_from_db()
    assert lock.status == "lifted"


def test_edit_page_and_bad_input(town, case, officer_a, client_for):
    c = client_for(officer_a)
    c.post("/zones/propose/", {"case": case.ref})
    lock = Zone.objects.get(type="lockdown")
    r = c.post(f"/zones/z/{lock.ref}/edit/", {"unit_kind": "building", "unit_target": "notanumber"})
    assert r.status_code == 422
    r = c.post(f"/zones/z/{lock.ref}/edit/", {"unit_kind": "building", "unit_target": str(town.buildings["BB1"].pk)})
    assert r.status_code == 404
    r = c.post(f"/zones/z/{lock.ref}/edit/", {"unit_kind": "building", "unit_target": str(town.buildings["BA2"].pk),
                                              "name": "封控\x00区"})
    assert r.status_code == 302
    lock.refresh_from_db()
    assert lock.people == 5 and lock.name == "封控区"


def test_scope_and_unknown_refs(town, case, officer_a, officer_b, client_for):
    client_for(officer_a).post("/zones/propose/", {"case": case.ref})
    lock = Zone.objects.get(type="lockdown")
    cb = client_for(officer_b)
    assert cb.get(f"/zones/z/{lock.ref}/").status_code == 404
    assert cb.post(f"/zones/z/{lock.ref}/edit/", {"name": "x"}).status_code == 404
    assert cb.get("/zones/z/NOPE/").status_code == 404
    assert cb.get("/zones/z/a%00b/").status_code == 404
    r = cb.post("/zones/propose/", {"case": case.ref})
    assert r.status_code == 404 and Zone.objects.count() == 3


def test_risk_areas_page_and_import(town, officer_a, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    c = client_for(officer_a)
    assert c.get("/zones/risk-areas/").status_code == 200
    data = "代码,名称,风险等级\n310115,浦东新区,高风险\n33021,坏,high\n".replace("代码", "区划代码").replace("名称", "地区名称")
    f = SimpleUploadedFile("沪.csv", data.encode("gbk"), content_type="text/csv")
    r = c.post("/zones/risk-areas/import/", {"file": f}, HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200
    text = r.content.decode()
    assert "浦东新区" in text and "line 3" in text.replace("line</", "line ")
    assert c.post("/zones/risk-areas/import/", {}).status_code == 422


def test_detail_page_speaks_the_readers_language(town, case, commander, client_for):
    """Unit kinds, history actions and zone types were raw identifiers (entrance, approve, lockdown)."""
    import re

    from jingkong.zones import services

    lock = {z.type: z for z in services.propose_from_case(case, actor=commander)}["lockdown"]
    services.zone_approve(lock, actor=commander)
    services.zone_regrade(lock, actor=commander, direction=1, reason="降级")
    page = client_for(commander).get(f"/zones/z/{lock.ref}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    cells = re.findall(r"<td>([^<]*)</td>", page)
    for raw in ("entrance", "approve", "downgrade", "lockdown", "control"):
        assert raw not in cells
    assert "entrance (unit)" in cells and "approved" in cells and "downgraded" in cells
    assert "lockdown zone (封控区)" in cells
