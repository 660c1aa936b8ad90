"""The screen's live stream: server-sent events read through the test client's streaming_content."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from jingkong.core.events import emit
from jingkong.dashboard.models import RefreshState

pytestmark = pytest.mark.django_db

URL = "/screen/stream"


@pytest.fixture(autouse=True)
def no_refresh(settings):
    """The families have their own tests; here the stream must not recompute them (one test turns it back on)."""
    settings.DASHBOARD_STREAM_REFRESH = False


def parse(text: str) -> list[dict]:
    """SSE blocks → [{"event", "data", "id", "comment", "retry"}]."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        msg = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                msg["comment"] = line[1:].strip()
            else:
                field, _, value = line.partition(": ")
                msg[field] = msg.get(field, "") + value if field == "data" else value
        if "data" in msg:
            msg["data"] = json.loads(msg["data"])
        out.append(msg)
    return out


def emit_case(code: str, ref: str):
    with transaction.atomic():
        return emit("tracing.case_created", region_code=code, payload={"ref": ref, "found_by": "round",
                                                                       "person_id": 77})


def read(resp, until=None) -> list[dict]:
    """Read the stream to its end (max_seconds), or until ``until(messages)`` holds."""
    text = ""
    for chunk in resp.streaming_content:
        text += chunk.decode()
        if until and until(parse(text)):
            break
    return parse(text)


def test_hello_then_alerts_of_the_scope_while_streaming(regions, officer_a, client_for):
    before = emit_case(regions["grid_a1"].code, "C-BEFORE")
    resp = client_for(officer_a).get(URL, {"max_seconds": 4})
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/event-stream")
    assert resp["Cache-Control"] == "no-cache" and resp["X-Accel-Buffering"] == "no"
    chunks = iter(resp.streaming_content)
    head = parse(next(chunks).decode() + next(chunks).decode())
    assert head[0]["retry"] == "3000"
    hello = head[1]
    assert hello["event"] == "hello" and hello["data"]["last_event_id"] >= before.pk
    assert isinstance(hello["data"]["versions"], dict)
    inside = emit_case(regions["grid_a2"].code, "C-INSIDE")
    outside = emit_case(regions["grid_b1"].code, "C-OUTSIDE")
    text = ""
    for chunk in chunks:
        text += chunk.decode()
        if "C-INSIDE" in text:
            break
    messages = parse(text)
    alerts = [m for m in messages if m.get("event") == "alert"]
    assert [m["id"] for m in alerts] == [str(inside.pk)]
    item = alerts[0]["data"]
    assert item["id"] == f"event:{inside.pk}" and item["kind"] == "case" and "C-INSIDE" in item["title"]
    assert item["region_name"] == regions["grid_a2"].name
    assert set(item) == {"id", "kind", "severity", "title", "detail", "region_code", "region_name", "at", "link"}
    rest = read(resp)
    assert not any(m.get("id") in (str(outside.pk), str(before.pk)) for m in rest)  # other street; before connecting
    assert "77" not in json.dumps(alerts)


def test_last_event_id_resumes(regions, officer_a, client_for):
    first = emit_case(regions["grid_a1"].code, "C-1")
    other = emit_case(regions["grid_b1"].code, "C-B")
    second = emit_case(regions["grid_a1"].code, "C-2")
    resp = client_for(officer_a).get(URL, {"max_seconds": 1}, HTTP_LAST_EVENT_ID=str(first.pk - 1))
    ids = [m["id"] for m in read(resp) if m.get("event") == "alert"]
    assert ids == [str(first.pk), str(second.pk)] and str(other.pk) not in ids
    resp = client_for(officer_a).get(URL, {"max_seconds": 1}, HTTP_LAST_EVENT_ID=str(first.pk))
    assert [m["id"] for m in read(resp) if m.get("event") == "alert"] == [str(second.pk)]


def test_routine_events_are_not_alerts(regions, officer_a, client_for):
    with transaction.atomic():
        routine = emit("testing.scans_recorded", region_code=regions["grid_a1"].code, payload={"count": 1})
    resp = client_for(officer_a).get(URL, {"max_seconds": 1}, HTTP_LAST_EVENT_ID=str(routine.pk - 1))
    assert not [m for m in read(resp) if m.get("event") == "alert"]


def test_figures_event_when_a_family_version_changes(regions, officer_a, client_for):
    RefreshState.objects.create(family="cases", version=1)
    resp = client_for(officer_a).get(URL, {"max_seconds": 5})
    chunks = iter(resp.streaming_content)
    hello = parse(next(chunks).decode() + next(chunks).decode())[1]
    assert hello["data"]["versions"]["cases"] == 1
    RefreshState.objects.filter(family="cases").update(version=2)
    text = ""
    for chunk in chunks:
        text += chunk.decode()
        if "figures" in text:
            break
    figures = [m for m in parse(text) if m.get("event") == "figures"]
    assert figures and figures[0]["data"]["versions"]["cases"] == 2


def test_refresh_runs_at_most_every_two_seconds(regions, officer_a, client_for, settings, monkeypatch):
    from jingkong.dashboard import refresher

    settings.DASHBOARD_STREAM_REFRESH = True
    calls = []
    monkeypatch.setattr(refresher, "run_pending", lambda **kw: calls.append(kw) or [])
    read(client_for(officer_a).get(URL, {"max_seconds": 3}))
    assert 1 <= len(calls) <= 2


def test_max_seconds_is_clamped_and_checked(regions, officer_a, client_for):
    from jingkong.dashboard import stream

    assert client_for(officer_a).get(URL, {"max_seconds": "soon"}).status_code == 422
    request = type("R", (), {"GET": {"max_seconds": "100000"}})()
    assert stream._max_seconds(request) == 300


def test_scope_and_permission(regions, officer_a, volunteer_a, client_for):
    assert client_for(volunteer_a).get(URL).status_code == 403
    assert client_for(officer_a).get(URL, {"region": regions["street_b"].code}).status_code == 404
    assert client_for(None).get(URL).status_code in (302, 401)


@pytest.mark.django_db(transaction=True)
def test_over_a_real_server(live_server, regions, officer_a, client_for):
    """Through a real WSGI server thread (as the browser tests and gunicorn run it): the event committed while the
    stream is open arrives as an alert, and the stream ends by itself after max_seconds."""
    import time
    import urllib.request

    from django.conf import settings

    c = client_for(officer_a)
    cookie = f"{settings.SESSION_COOKIE_NAME}={c.cookies[settings.SESSION_COOKIE_NAME].value}"
    req = urllib.request.Request(f"{live_server.url}{URL}?max_seconds=4", headers={"Cookie": cookie})
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 - the test's own server
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        first = resp.readline().decode()
        assert first.startswith("retry:")
        event = emit_case(regions["grid_a1"].code, "C-LIVE")
        body = first + resp.read().decode()  # to the end: the server closes after max_seconds
    assert time.monotonic() - started < 15
    alerts = [m for m in parse(body) if m.get("event") == "alert"]
    assert [m["id"] for m in alerts] == [str(event.pk)] and "C-LIVE" in alerts[0]["data"]["title"]
