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
def no_refresh(settings, monkeypatch):
    """The families have their own tests; here the stream must not recompute them (one test turns it back on). The
    process-wide refresh throttle starts afresh in every test."""
    from jingkong.dashboard import stream

    settings.DASHBOARD_STREAM_REFRESH = False
    monkeypatch.setattr(stream, "_refresh_last", [float("-inf")])


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
    # the person's id (77) is in no field ("at" left out: its microseconds may hold the digits by chance)
    assert "person_id" not in json.dumps(alerts) and all("77" not in str(v) for k, v in item.items() if k != "at")


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
    from jingkong.dashboard import refresher, stream

    settings.DASHBOARD_STREAM_REFRESH = True
    monkeypatch.setattr(stream, "REFRESH_GRACE_SECONDS", 0)
    calls = []
    monkeypatch.setattr(refresher, "run_pending", lambda **kw: calls.append(kw) or [])
    read(client_for(officer_a).get(URL, {"max_seconds": 3}))
    assert 1 <= len(calls) <= 2


def test_a_new_stream_lets_its_pages_first_render_go_first(regions, officer_a, client_for, settings, monkeypatch):
    """The stream opens with the page's first render: no refresh in its first seconds (the reads of the page would
    otherwise wait behind a family's recompute in the same process)."""
    from jingkong.dashboard import refresher, stream

    settings.DASHBOARD_STREAM_REFRESH = True
    monkeypatch.setattr(stream, "_refresh_last", [float("-inf")])
    calls = []
    monkeypatch.setattr(refresher, "run_pending", lambda **kw: calls.append(kw) or [])
    read(client_for(officer_a).get(URL, {"max_seconds": 2}))
    assert calls == []


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


def test_a_last_event_id_newer_than_any_event_does_not_hold_back_new_events(regions, officer_a, client_for):
    """A browser that reconnects with an id from another database (a reset demo) must still get what happens now."""
    latest = emit_case(regions["grid_a1"].code, "C-OLD").pk
    resp = client_for(officer_a).get(URL, {"max_seconds": 4}, HTTP_LAST_EVENT_ID=str(latest + 1000))
    chunks = iter(resp.streaming_content)
    next(chunks), next(chunks)  # retry, hello
    new = emit_case(regions["grid_a1"].code, "C-NEW")
    text = ""
    for chunk in chunks:
        text += chunk.decode()
        if "C-NEW" in text:
            break
    assert [m["id"] for m in parse(text) if m.get("event") == "alert"] == [str(new.pk)]


def test_analyst_stream_carries_no_case_numbers(regions, client_for):
    from jingkong.conftest import make_user

    analyst = make_user("analyst_a", "analyst", regions["street_a"])
    first = emit_case(regions["grid_a1"].code, "C-SECRET")
    resp = client_for(analyst).get(URL, {"max_seconds": 1}, HTTP_LAST_EVENT_ID=str(first.pk - 1))
    alerts = [m for m in read(resp) if m.get("event") == "alert"]
    assert [m["id"] for m in alerts] == [str(first.pk)]
    assert alerts[0]["data"]["link"] == "" and "C-SECRET" not in json.dumps(alerts, ensure_ascii=False)
    assert alerts[0]["data"]["region_name"] == regions["grid_a1"].name


def test_the_stream_ends_when_the_user_is_deactivated(regions, officer_a, client_for, monkeypatch):
    import time

    from jingkong.access.models import User
    from jingkong.dashboard import stream

    monkeypatch.setattr(stream, "USER_SECONDS", 0.2)
    resp = client_for(officer_a).get(URL, {"max_seconds": 60})
    chunks = iter(resp.streaming_content)
    next(chunks), next(chunks)
    User.objects.filter(pk=officer_a.pk).update(is_active=False)
    started = time.monotonic()
    for _chunk in chunks:
        pass
    assert time.monotonic() - started < 10


def test_refresh_at_most_once_every_two_seconds_across_streams(monkeypatch):
    """Ten open screens must not start ten refresh passes every 2 s: one per process."""
    from jingkong.dashboard import refresher, stream

    calls = []
    monkeypatch.setattr(refresher, "run_pending", lambda **kw: calls.append(kw) or [])
    clock_now = [100.0]
    monkeypatch.setattr(stream.time, "monotonic", lambda: clock_now[0])
    assert [stream._maybe_refresh() for _ in range(5)] == [True, False, False, False, False]
    clock_now[0] += stream.REFRESH_SECONDS
    assert stream._maybe_refresh() and len(calls) == 2


def test_a_busy_refresh_never_makes_another_stream_wait(monkeypatch):
    from jingkong.dashboard import refresher, stream

    calls = []
    monkeypatch.setattr(refresher, "run_pending", lambda **kw: calls.append(kw) or [])
    with stream._refresh_lock:  # another stream's pass is running
        assert stream._maybe_refresh() is False
    assert calls == []


@pytest.mark.django_db(transaction=True)
def test_a_closed_or_broken_stream_does_not_touch_the_database(regions, officer_a, django_db_blocker, caplog):
    """The client went away (the server closes the generator, or the garbage collector does after a test): no
    database access then — a test's database is already blocked, which logged 'Database access not allowed'
    tracebacks. A database that fails under an open stream ends it with one warning, not a traceback."""
    import logging

    from jingkong.dashboard import stream

    gen = stream.events(regions["street_a"].code, resume=None, max_seconds=30, poll=0.05, refresh=False,
                        user=officer_a)
    next(gen), next(gen)
    with django_db_blocker.block():
        gen.close()  # must not raise RuntimeError("Database access not allowed")
    gen = stream.events(regions["street_a"].code, resume=None, max_seconds=30, poll=0.05, refresh=False)
    next(gen), next(gen)
    caplog.set_level(logging.WARNING, logger="jingkong.dashboard.stream")
    with django_db_blocker.block():
        assert list(gen) == []  # the next poll fails: the stream ends quietly
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("stream ended" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("params", "headers", "field"), [
    ({"region": "3302%"}, {}, "region"),
    ({"region": "_"}, {}, "region"),
    ({"max_seconds": "-"}, {}, "max_seconds"),
    ({}, {"HTTP_LAST_EVENT_ID": "abc"}, "Last-Event-ID"),
])
def test_bad_parameters_answer_4xx_naming_the_field(regions, officer_a, client_for, params, headers, field):
    from django.utils import translation

    with translation.override("en"):
        resp = client_for(officer_a).get(URL, params, **headers)
    assert resp.status_code == 422 and field in resp.content.decode()
