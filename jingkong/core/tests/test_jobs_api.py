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
