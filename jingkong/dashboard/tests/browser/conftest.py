"""Browser tests of the command screen: the system Chromium driven by selenium against pytest-django's live server.

They skip with a clear message where no browser is installed (``apt-get install chromium chromium-driver``; ``.ci/run``
does that). selenium-manager never runs: the driver is the system chromedriver found on PATH, so nothing is
downloaded. ``JK_SCREENSHOT=path.png`` saves a screenshot of the loaded screen (used for the README).
"""

from __future__ import annotations

import datetime as dt
import shutil
from types import SimpleNamespace

import pytest

SKIP_MESSAGE = "Chromium/chromedriver not installed: apt-get install chromium chromium-driver"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="session")
def browser_binaries():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(SKIP_MESSAGE)
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium not installed: pip install -e '.[dev]'")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def driver(browser_binaries):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_binaries
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--window-size=1920,1080", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    except Exception as exc:  # a broken install must say so, not fail every test obscurely
        pytest.skip(f"{SKIP_MESSAGE} (could not start: {exc.__class__.__name__}: {str(exc)[:200]})")
    browser.set_page_load_timeout(30)
    # the wall's viewport exactly (the window size includes the browser's own frame)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
    yield browser
    try:
        browser.get("about:blank")  # closes the page's event stream before the test's database goes away
    finally:
        browser.quit()


@pytest.fixture(autouse=True)
def short_streams(settings):
    """Streams end after 15 s (the browser reconnects), so no server thread outlives its test for long."""
    settings.DASHBOARD_STREAM_MAX_SECONDS = 15


@pytest.fixture
def login(driver, live_server):
    """``login(user, language="zh-hans")``: the browser carries that user's session (made by the test client)."""
    from django.conf import settings
    from django.test import Client

    def do(user, language: str = "zh-hans"):
        client = Client()
        client.force_login(user)
        driver.get(live_server.url + "/login/")  # a page of the origin, to set cookies on it
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        driver.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": session, "path": "/"})
        driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "path": "/"})

    return do


@pytest.fixture
def screen_world(regions, commander):
    """A small outbreak in the district, built through the apps' own paths where they exist.

    Street A: two cases (from testing's individual-positive events, as the lab makes them), one's zones proposed and
    the lockdown approved, a running round with a sampling site, a transfer run with its route, a quarantine hotel;
    street B: one case and a reported problem.
    """
    from jingkong.access.guard import scope_of
    from jingkong.command import problems
    from jingkong.core import clock
    from jingkong.isolation.models import Transfer, TransferBatch, TransferStop
    from jingkong.isolation.tests.transfer_world import TransferWorld
    from jingkong.testing.tests.campaign_helpers import make_campaign, make_site
    from jingkong.tracing.tests.helpers import activate, make_cases
    from jingkong.zones import services as zones

    activate()
    now = clock.now()
    w = TransferWorld(regions)
    a1 = w.person("屏甲", building="SCR-A1", side="a")
    a2 = w.person("屏乙", building="SCR-A2", side="a")
    b1 = w.person("屏丙", building="SCR-B1", side="b")
    cases = make_cases((a1, now - dt.timedelta(hours=6)), (a2, now - dt.timedelta(hours=5)),
                       (b1, now - dt.timedelta(hours=4)))
    proposed = zones.propose_from_case(cases[0], actor=commander)
    lockdown = next(z for z in proposed if z.type == "lockdown")
    zones.zone_approve(lockdown, actor=commander, reason="browser test")

    campaign = make_campaign(regions["district"], "R-SCR-1", status="running", starts_at=now - dt.timedelta(hours=2),
                             hours=24)
    site = make_site(regions["grid_a2"], "S-SCR-1", campaign=campaign, capacity=60)

    vehicle = w.vehicle("SCR1", side="a", lon=121.801, lat=29.901)
    code = regions["grid_a1"].code
    batch = TransferBatch.objects.create(ref="TB-SCR-1", region_code=code, pickup_lon=121.805, pickup_lat=29.905,
                                         destination_type="central", size=2, status="planned", created_at=now,
                                         updated_at=now)
    run = Transfer.objects.create(ref="TR-SCR-1", vehicle=vehicle, region_code=vehicle.region_code, status="dispatched",
                                  planned_start=now - dt.timedelta(minutes=30), planned_end=now + dt.timedelta(hours=1),
                                  route={"type": "LineString",
                                         "coordinates": [[121.801, 29.901], [121.805, 29.905], [121.81, 29.93]]},
                                  created_at=now, updated_at=now)
    TransferStop.objects.create(transfer=run, seq=1, kind="pickup", batch=batch, lon=121.805, lat=29.905,
                                eta=now + dt.timedelta(minutes=15))
    TransferStop.objects.create(transfer=run, seq=2, kind="dropoff", batch=batch, lon=121.81, lat=29.93,
                                eta=now + dt.timedelta(hours=1))
    facility = w.facility("F-SCR", lon=121.812, lat=29.932)
    problem = problems.problem_report(actor=commander, scope=scope_of(commander), category="other", urgency="urgent",
                                      description="物资短缺", region_code=regions["grid_b1"].code)
    return SimpleNamespace(regions=regions, world=w, cases=cases, zones=proposed, site=site, run=run,
                           facility=facility, problem=problem, commander=commander)


@pytest.fixture
def live_server(transactional_db):
    """pytest-django's live server, except that on SQLite its threads open their own connections to the (shared
    cache) in-memory test database instead of all sharing the test's one connection: the screen uses the server from
    several threads at once (page, API calls, the event stream), and one SQLite connection used by several threads
    at once fails ("cannot start a transaction within a transaction") or deadlocks."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost", start=False)
    server.thread.connections_override = {}
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def serialised_sqlite(request, monkeypatch):
    """SQLite's shared-cache in-memory database locks whole tables and answers "database table is locked" at once
    (no busy wait) when two connections collide: serialise database work — a thread holds one lock for a query
    (with its rows fetched) outside a transaction, or for a whole transaction. PostgreSQL needs none of this."""
    import threading

    from django.db import connection, transaction
    from django.db.backends import utils
    from django.db.models.sql import compiler

    if connection.vendor != "sqlite":
        yield
        return
    lock = threading.RLock()

    def locked(fn):
        def run(*args, **kwargs):
            with lock:
                return fn(*args, **kwargs)
        return run

    enter, exit_ = transaction.Atomic.__enter__, transaction.Atomic.__exit__

    def atomic_enter(self):
        lock.acquire()
        try:
            return enter(self)
        except BaseException:
            lock.release()
            raise

    def atomic_exit(self, *exc):
        try:
            return exit_(self, *exc)
        finally:
            lock.release()

    monkeypatch.setattr(transaction.Atomic, "__enter__", atomic_enter)
    monkeypatch.setattr(transaction.Atomic, "__exit__", atomic_exit)
    for cls, names in ((utils.CursorWrapper, ("execute", "executemany")),
                       (compiler.SQLCompiler, ("execute_sql",)),
                       (compiler.SQLInsertCompiler, ("execute_sql",)),
                       (compiler.SQLUpdateCompiler, ("execute_sql",)),
                       (compiler.SQLDeleteCompiler, ("execute_sql",))):
        for name in names:
            monkeypatch.setattr(cls, name, locked(getattr(cls, name)))
    for name in ("fetchone", "fetchmany", "fetchall"):
        monkeypatch.setattr(utils.CursorWrapper, name,
                            locked(lambda self, *args, _name=name: getattr(self.cursor, _name)(*args)), raising=False)
    yield
