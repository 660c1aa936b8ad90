from __future__ import annotations

import json
import re
import socket

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if getattr(resp, "streaming", False) else resp.content


def test_home_renders_the_map_with_local_leaflet(regions, officer_a, client_for, no_network):
    c = client_for(officer_a)
    resp = c.get("/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'id="map"' in html
    config = json.loads(re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert config["root"] == "330206002" and config["api"] == "/api/v1/geo"
    assert config["time_zone"] == "Asia/Shanghai"
    strings = json.loads(re.search(r'<script id="map-i18n" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert strings["levels"]["grid"] and strings["legend_title"]
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN, no tiles
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    leaflet_js = [a for a in assets if a.endswith("xstatic/leaflet/leaflet.js")]
    assert leaflet_js, assets
    for url in assets:
        asset = c.get(url)
        assert asset.status_code == 200, url
    js = _body(c.get(leaflet_js[0]))
    assert b"Leaflet" in js[:2000]


def test_synthetic_note_shown_only_when_regions_are_synthetic(regions, officer_a, client_for):
    from jingkong.geo.models import Region

    c = client_for(officer_a)
    assert 'id="synthetic-note"' not in c.get("/").content.decode()
    Region.objects.filter(code__startswith="330206002001").update(synthetic=True)
    assert 'id="synthetic-note"' in c.get("/").content.decode()


def test_home_requires_login(regions, client_for):
    resp = client_for(None).get("/")
    assert resp.status_code in (302, 401)


def test_home_for_platform_wide_admin_without_region(regions, admin_user, client_for):
    resp = client_for(admin_user).get("/")
    assert resp.status_code == 200
    config = json.loads(re.search(r'<script id="map-config" type="application/json">(.*?)</script>',
                                  resp.content.decode(), re.S).group(1))
    assert config["root"] == ""
