"""The command screen page without a browser: permission, the config the script reads, offline assets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.utils import translation

from jingkong.access.roles import ROLE_PERMISSIONS, Perm

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"


def _json(html: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def _body(resp) -> bytes:
    return b"".join(resp.streaming_content) if getattr(resp, "streaming", False) else resp.content


def _external_urls(text: str) -> list[str]:
    """http(s) URLs to another host (the SVG/XHTML namespace identifiers are names, not fetched)."""
    urls = re.findall(r"https?://[^\s\"'<>)]+", text)
    return [u for u in urls if not re.match(r"https?://(www\.)?w3\.org/", u)]


def test_volunteer_is_refused(regions, volunteer_a, client_for):
    assert not volunteer_a.has_role_perm(Perm.DASHBOARD_VIEW)
    assert client_for(volunteer_a).get("/screen/").status_code == 403


def test_anonymous_is_sent_to_login(regions, client_for):
    assert client_for(None).get("/screen/").status_code in (302, 401)


def test_commander_gets_the_page_with_every_contract_element(regions, commander, client_for):
    resp = client_for(commander).get("/screen/")
    assert resp.status_code == 200
    html = resp.content.decode()
    for needle in ('id="jk-screen"', 'data-ready="0"', 'id="jk-map"', 'id="jk-breadcrumb"', 'id="jk-alerts"',
                   'id="jk-clock"', 'id="jk-epi"', 'id="jk-live"', 'data-state="closed"',
                   'class="jk-tile" data-tile="cases_today"'):
        assert needle in html, needle
    for layer in ("situation", "testing", "routes", "services"):
        assert f'data-layer="{layer}"' in html
    config = _json(html, "jk-config")
    assert config["layers"] == ["situation", "testing", "routes", "services"]
    assert config["root"] == regions["district"].code
    assert config["start"]["code"] == regions["district"].code
    assert config["time_zone"] == "Asia/Shanghai"
    assert config["api"] == "/api/v1/dashboard" and config["stream"] == "/screen/stream"


@pytest.mark.parametrize("role", ["analyst", "facility_manager", "transfer_dispatcher", "tracer", "grid_worker",
                                  "street_officer", "commander"])
def test_config_lists_only_the_layers_the_role_may_read(regions, client_for, role):
    from jingkong.conftest import make_user

    user = make_user(f"u-{role}", role, regions["street_a"])
    perms = ROLE_PERMISSIONS[role]
    html = client_for(user).get("/screen/").content.decode()
    config = _json(html, "jk-config")
    expected = [name for name, perm in (("situation", Perm.DASHBOARD_VIEW), ("testing", Perm.TESTING_VIEW),
                                        ("routes", Perm.ISOLATION_VIEW), ("services", Perm.COMMAND_VIEW))
                if perm in perms]
    assert config["layers"] == expected
    for name in ("testing", "routes", "services"):
        assert (f'data-layer="{name}"' in html) == (name in expected)
    assert config["sources"]["cases"] == (Perm.TRACING_VIEW in perms)
    assert config["sources"]["zones"] == (Perm.ZONES_VIEW in perms)
    assert config["sources"]["problems"] == (Perm.COMMAND_VIEW in perms)


def test_start_region_from_the_url_only_inside_the_scope(regions, officer_a, client_for):
    c = client_for(officer_a)
    grid = regions["grid_a1"]
    config = _json(c.get(f"/screen/?region={grid.code}").content.decode(), "jk-config")
    assert config["start"]["code"] == grid.code
    assert [r["code"] for r in config["start"]["path"]] == [regions["street_a"].code, regions["community_a"].code,
                                                           grid.code]  # the district above is outside the scope
    html = c.get(f"/screen/?region={regions['street_b'].code}").content.decode()
    config = _json(html, "jk-config")
    assert config["start"]["code"] == regions["street_a"].code
    assert regions["street_b"].name not in html


def test_breadcrumb_rendered_server_side(regions, commander, client_for):
    html = client_for(commander).get(f"/screen/?region={regions['community_b'].code}").content.decode()
    crumb = re.search(r'<nav id="jk-breadcrumb".*?</nav>', html, re.S).group(0)
    assert f'data-region="{regions["district"].code}"' in crumb and regions["street_b"].name in crumb
    assert f'<strong data-region="{regions["community_b"].code}">' in crumb


def test_strings_follow_the_language(regions, commander, client_for):
    from django.utils.translation import gettext

    c = client_for(commander)
    for lang in ("en", "zh-hans"):
        c.cookies["django_language"] = lang
        html = c.get("/screen/").content.decode()
        config = _json(html, "jk-config")
        strings = _json(html, "jk-i18n")
        assert config["language"] == lang
        with translation.override(lang):
            assert strings["no_data"] == gettext("no data")
            assert strings["up"] == gettext("Up one level")
    with translation.override("zh-hans"):
        assert gettext("no data") != "no data"  # the catalogue does translate: the check above is not vacuous


def test_static_assets_resolve_through_the_finders_offline(regions, commander, client_for):
    for path in ("xstatic/leaflet/leaflet.js", "xstatic/leaflet/leaflet.css",
                 "xstatic/leaflet-markercluster/leaflet.markercluster.js",
                 "xstatic/leaflet-markercluster/MarkerCluster.css", "plotly/plotly.min.js",
                 "dashboard/screen.js", "dashboard/screen.css"):
        assert finders.find(path), path
    # only plotly's bundle is exposed from the plotly package, not its datasets
    assert finders.find("plotly/widgetbundle.js") is None
    c = client_for(commander)
    html = c.get("/screen/").content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(a.endswith("plotly/plotly.min.js") for a in assets), assets
    assert any(a.endswith("leaflet.markercluster.js") for a in assets), assets
    for url in assets:
        resp = c.get(url)
        assert resp.status_code == 200, url
    plotly_js = _body(c.get(next(a for a in assets if a.endswith("plotly/plotly.min.js"))))
    assert b"plotly" in plotly_js[:5000].lower()


def test_no_external_urls(regions, commander, client_for):
    html = client_for(commander).get("/screen/").content.decode()
    assert _external_urls(html) == []
    for name in ("screen.js", "screen.css"):
        assert _external_urls((STATIC / name).read_text(encoding="utf-8")) == [], name


def test_every_ui_string_of_the_script_comes_from_the_config():
    """The script has no hard-coded words: whatever it shows it takes from T (the translated config)."""
    js = (STATIC / "screen.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.S)
    assert not re.search(r"[\u4e00-\u9fff]", code)
    # textContent / el(...) never receive a quoted English word
    assert not re.search(r"textContent\s*=\s*\"[A-Za-z]{3,}", code)


def test_config_carries_the_platform_clock_not_the_wall_clock(regions, commander, client_for):
    """A replayed outbreak runs in 2022: the header clock starts from the server's clock.now(), sent in the config."""
    import datetime as dt

    from jingkong.core import clock

    replayed = dt.datetime(2022, 1, 10, 12, 54, 7, tzinfo=dt.UTC)
    c = client_for(commander)
    with clock.frozen(replayed):
        config = _json(c.get("/screen/").content.decode(), "jk-config")
    assert dt.datetime.fromisoformat(config["now"]) == replayed
    js = (STATIC / "screen.js").read_text(encoding="utf-8")
    assert "cfg.now" in js and "nowFmt.format(new Date())" not in js  # the header does not show the browser's date


def test_every_stage_of_the_loop_has_a_translated_short_name(regions, commander, client_for):
    """The narrow clock column shows short names (检测/流调/…); the full definition stays in the API's label."""
    from django.utils.translation import pgettext

    from jingkong.analytics.clock import STAGE_KEYS

    c = client_for(commander)
    for lang in ("en", "zh-hans"):
        c.cookies["django_language"] = lang
        strings = _json(c.get("/screen/").content.decode(), "jk-i18n")
        assert list(strings["stage_short"]) == list(STAGE_KEYS)
        with translation.override(lang):
            assert strings["stage_short"]["grouping"] == pgettext("five-stage clock", "Group")
        assert all(len(v) <= 12 for v in strings["stage_short"].values()), strings["stage_short"]


def test_every_alert_kind_the_feed_can_send_has_a_label(regions, commander, client_for):
    """The feed never shows a raw code such as ``task_overdue``: every kind alerts.py emits has a translated name."""
    source = (Path(__file__).resolve().parent.parent / "alerts.py").read_text(encoding="utf-8")
    kinds = set(re.findall(r'_item\([^,]+,\s*"(\w+)"', source)) | set(re.findall(r'\(\s*"(zone_\w+)",\s*\d', source))
    assert {"case", "task_overdue", "zone_proposed"} <= kinds  # the scan found the kinds (not vacuous)
    strings = _json(client_for(commander).get("/screen/").content.decode(), "jk-i18n")
    assert kinds <= set(strings["alert_kinds"]), kinds - set(strings["alert_kinds"])


def test_contact_and_rt_labels_are_translated_strings(regions, commander, client_for):
    from django.utils.translation import gettext

    c = client_for(commander)
    c.cookies["django_language"] = "en"
    strings = _json(c.get("/screen/").content.decode(), "jk-i18n")
    with translation.override("en"):
        assert strings["isolated"] == gettext("isolated") and strings["identified"] == gettext("identified")
        assert strings["identified_today"] == gettext("identified today %(n)s")
        assert "%(n)s" in strings["epi_rt_absent"] and "%(w)s" in strings["epi_rt_absent"]


def test_no_favicon_request_and_plotly_does_not_block_the_first_render(regions, commander, client_for):
    html = client_for(commander).get("/screen/").content.decode()
    assert '<link rel="icon" href="data:,">' in html  # no /favicon.ico 404 in the console of the wall display
    plotly_tag = re.search(r'<script[^>]*plotly/plotly\.min\.js[^>]*>', html).group(0)
    assert " async" in plotly_tag and 'id="jk-plotly"' in plotly_tag


def test_layer_codes_have_translated_names_for_the_popups(regions, commander, client_for):
    """Popups show 转运中/物资短缺, not en_route/supply_shortage: every code a layer sends is named in the config."""
    import inspect

    from jingkong.command.models import ProblemCategory, ServiceStatus
    from jingkong.dashboard import layers
    from jingkong.isolation.models import TransferStatus

    c = client_for(commander)
    c.cookies["django_language"] = "en"
    choices = _json(c.get("/screen/").content.decode(), "jk-i18n")["choices"]
    with translation.override("en"):
        assert choices["run_status"] == {v: str(lbl) for v, lbl in TransferStatus.choices}
        assert choices["problem_type"] == {v: str(lbl) for v, lbl in ProblemCategory.choices}
        assert choices["service_status"] == {v: str(lbl) for v, lbl in ServiceStatus.choices}
    site_codes = set(re.findall(r'return "(\w+)"', inspect.getsource(layers.site_status)))
    assert {"open", "closed"} <= site_codes
    assert site_codes <= set(choices["site_status"]), site_codes - set(choices["site_status"])
    js = (STATIC / "screen.js").read_text(encoding="utf-8")
    for group in ("run_status", "site_status", "problem_type", "urgency", "problem_status", "service_category",
                  "service_status"):
        assert f'label("{group}"' in js, group  # the popup uses the names
