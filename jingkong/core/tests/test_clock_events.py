from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from jingkong.core import clock
from jingkong.core.events import emit
from jingkong.core.models import DomainEvent


def test_frozen_clock_and_naive_rejection():
    at = dt.datetime(2022, 1, 2, 3, 4, tzinfo=dt.UTC)
    with clock.frozen(at):
        assert clock.now() == at
    assert clock.now() != at
    with pytest.raises(ValueError, match="aware"):
        with clock.frozen(dt.datetime(2022, 1, 1)):
            pass


def test_today_is_in_the_platform_time_zone(settings):
    # 2022-01-01 17:00 UTC is already 2 January in Shanghai.
    with clock.frozen(dt.datetime(2022, 1, 1, 17, 0, tzinfo=dt.UTC)):
        assert clock.today() == dt.date(2022, 1, 2)
        assert clock.today("UTC") == dt.date(2022, 1, 1)


def test_offset_clock_replays_at_speed():
    real0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    virtual0 = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    src = clock.offset_clock(real0, virtual0, speed=60, real=lambda: real0 + dt.timedelta(seconds=10))
    with clock.use(src):
        # speed 60: ten real seconds are ten virtual minutes
        assert clock.now() == virtual0 + dt.timedelta(minutes=10)


@pytest.mark.django_db(transaction=True)
def test_emit_requires_a_transaction_and_records_the_subject(regions, frozen_clock):
    region = regions["street_a"]
    with pytest.raises(RuntimeError, match="outside a transaction"):
        emit("x.happened", subject=region)
    with transaction.atomic():
        ev = emit("x.happened", subject=region, region_code=region.code, payload={"n": 1})
    stored = DomainEvent.objects.get(pk=ev.pk)
    assert (stored.subject_type, stored.subject_id, stored.region_code) == ("geo.region", str(region.pk), region.code)
    assert stored.occurred_at == frozen_clock and stored.payload == {"n": 1}


def test_replay_clock_from_environment_continues_the_outbreak_in_every_process():
    virtual = dt.datetime(2022, 1, 10, 12, 54, tzinfo=dt.UTC)
    anchor = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    env = clock.replay_env(virtual, anchor=anchor)
    try:
        assert clock.install_replay_from_env(env) == virtual
        elapsed = clock.now() - virtual
        assert dt.timedelta(seconds=29) <= elapsed <= dt.timedelta(seconds=90)  # runs on from the anchor in real time
        assert clock.today() == dt.date(2022, 1, 10)
    finally:
        clock.set_global(None)
    assert clock.now().year >= 2026  # the wall clock again


def test_replay_clock_is_not_installed_without_the_environment_and_refuses_naive_times():
    assert clock.install_replay_from_env({}) is None
    with pytest.raises(ValueError):
        clock.install_replay_from_env({clock.REPLAY_FROM_ENV: "2022-01-10T08:00:00"})
    clock.set_global(None)
