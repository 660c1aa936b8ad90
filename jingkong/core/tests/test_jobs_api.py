from __future__ import annotations

import pytest

from jingkong.core import jobs
from jingkong.core.models import DomainEvent, Job


@jobs.register("test.count")
def _count(ctx, n: int = 3, fail: bool = False):
    for i in range(n):
        ctx.progress(i + 1, n, "counting")
    if fail:
        raise ValueError("boom at the end")
    return {"counted": n}


@pytest.mark.django_db
def test_run_now_records_progress_and_result(commander):
    job = jobs.run_now("test.count", {"n": 5}, actor=commander)
    assert job.status == Job.Status.SUCCEEDED
    assert (job.progress, job.total, job.result) == (5, 5, {"counted": 5})


@pytest.mark.django_db
def test_failed_job_keeps_the_error(commander):
    job = jobs.run_now("test.count", {"n": 1, "fail": True}, actor=commander)
    assert job.status == Job.Status.FAILED
    assert "boom at the end" in job.message


@pytest.mark.django_db
def test_worker_claims_queued_jobs_once(commander):
    first = jobs.enqueue("test.count", {"n": 2}, actor=commander, region_code="330206")
    jobs.enqueue("test.count", {"n": 1}, actor=commander, region_code="330206")
    assert DomainEvent.objects.filter(type="job.queued").count() == 2
    assert jobs.work(once=True) == 2
    assert jobs.work(once=True) == 0
    first.refresh_from_db()
    assert first.status == Job.Status.SUCCEEDED and first.result == {"counted": 2}


@pytest.mark.django_db
def test_job_api_is_scoped(commander, officer_a, officer_b, client_for):
    job = jobs.enqueue("test.count", {"n": 1}, actor=officer_a, region_code="330206002")
    assert client_for(None).get(f"/api/v1/core/jobs/{job.pk}").status_code == 401
    assert client_for(officer_b).get(f"/api/v1/core/jobs/{job.pk}").status_code == 404
    ok = client_for(officer_a).get(f"/api/v1/core/jobs/{job.pk}")
    assert ok.status_code == 200 and ok.json()["kind"] == "test.count"
    assert client_for(commander).get(f"/api/v1/core/jobs/{job.pk}").status_code == 200


def test_unknown_job_kind_is_a_clear_error(db):
    from jingkong.core.exceptions import NotFound

    with pytest.raises(NotFound, match="unknown job kind"):
        jobs.enqueue("no.such.job")


@pytest.mark.django_db
def test_district_jobs_are_queued_for_platform_wide_users_only(admin_user, commander, client_for, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    body = {"population": 2000, "seed": 3, "days": 1}
    denied = client_for(commander).post("/api/v1/core/jobs/district", body, content_type="application/json")
    assert denied.status_code == 403
    bad = client_for(admin_user).post("/api/v1/core/jobs/district", {"population": 5}, content_type="application/json")
    assert bad.status_code == 422 and "population" in bad.json()["message"]
    ok = client_for(admin_user).post("/api/v1/core/jobs/district", body, content_type="application/json")
    assert ok.status_code == 202, ok.content
    data = ok.json()
    assert data["generate"]["kind"] == "synth.generate" and data["load"]["kind"] == "people.load_district"
    assert jobs.work(once=True) == 2
    gen, load = Job.objects.get(pk=data["generate"]["id"]), Job.objects.get(pk=data["load"]["id"])
    assert gen.status == Job.Status.SUCCEEDED, gen.message
    assert load.status == Job.Status.SUCCEEDED, load.message
    from jingkong.people.models import Person

    assert Person.objects.count() == 2000


@pytest.mark.django_db
def test_event_stream_shows_own_region_and_platform_wide_events(commander, officer_a, officer_b, client_for):
    from django.db import transaction

    from jingkong.core.events import emit

    with transaction.atomic():
        emit("x.street_a", region_code="330206002001001")
        emit("x.street_b", region_code="330206004001001")
        emit("x.platform", region_code="")
    seen = lambda user: {e["type"] for e in client_for(user).get("/api/v1/core/events?type=x.street_a,x.street_b,x.platform").json()}  # noqa: E731
    assert seen(officer_a) == {"x.street_a", "x.platform"}
    assert seen(officer_b) == {"x.street_b", "x.platform"}
    assert seen(commander) == {"x.street_a", "x.street_b", "x.platform"}
