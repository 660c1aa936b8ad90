"""Lab-side pages under /testing/: the labs overview, one lab's board (for the wall screen: it refreshes itself), and
the pool-positive follow-up list for the door-to-door teams (printable, exportable).

Every view is guarded by ``require``; lists naming people need PERSON_VIEW and are audited. Times are shown in the
platform's time zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import OrderedDict

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from jingkong.access import audit
from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.analytics import turnaround as ta
from jingkong.core import clock
from jingkong.core.exceptions import ApplicationError, NotFound, ValidationFailed
from jingkong.testing import followup
from jingkong.testing import labs as lab_rules
from jingkong.testing.models import (
    BatchStatus,
    Outcome,
    RetestReason,
    RetestStatus,
    TransportBatch,
    TubeResult,
    TubeStatus,
)
from jingkong.testing.results import safe_text

STAGE_LABELS = {
    "sample_to_receipt": gettext_lazy("Sampling → lab receipt"),
    "receipt_to_result": gettext_lazy("Lab receipt → result"),
    "sample_to_result": gettext_lazy("Sampling → result"),
}
REASON_LABELS = {
    "result_overdue": gettext_lazy("result overdue"),
    "in_transit_too_long": gettext_lazy("in transit too long"),
}


def _section_nav(request) -> list[dict]:
    """The testing section's pages without parameters (views carrying a ``nav_title``) the user may open."""
    from jingkong.testing import urls_campaigns, urls_coverage, urls_labs

    out = []
    for module in (urls_campaigns, urls_labs, urls_coverage):
        for pattern in module.urlpatterns:
            title = getattr(pattern.callback, "nav_title", None)
            perm = getattr(pattern.callback, "jk_permission", None)
            if not title or "<" in str(pattern.pattern) or not pattern.name:
                continue
            if perm and not request.jk_user.has_role_perm(perm):
                continue
            out.append({"url": reverse(f"testing:{pattern.name}"), "title": title})
    return out


def _page(request, template: str, **context):
    context.setdefault("section_nav", _section_nav(request))
    context.setdefault("can_see_persons", request.jk_user.has_role_perm(Perm.PERSON_VIEW))
    return render(request, template, context)


def _stages(overall: dict) -> list[dict]:
    return [{"key": k, "label": STAGE_LABELS[k], **overall[k]} for k in ta.STAGES]


def _overdue_rows(items: list[dict]) -> list[dict]:
    return [{**i, "reason_labels": [REASON_LABELS.get(r, r) for r in i["reasons"]]} for i in items]


# --- labs overview -------------------------------------------------------------------------------------------------


@require(Perm.TESTING_VIEW)
def labs(request):
    """Every lab the user can see, with backlog, throughput and overdue counts; turnaround by site for the area."""
    now = clock.now()
    hour_ago = now - dt.timedelta(hours=1)
    day_ago = now - dt.timedelta(hours=24)
    lab_list = list(lab_rules.lab_list(scope=request.scope, actor=request.jk_user))
    ids = [lab.pk for lab in lab_list]
    from jingkong.testing.models import Tube

    backlog = {r["lab_id"]: r for r in Tube.objects.filter(lab_id__in=ids).values("lab_id").annotate(
        backlog=Count("id", filter=Q(status=TubeStatus.RECEIVED)),
        received_24h=Count("id", filter=Q(received_at__gte=day_ago)))}
    transit = dict(Tube.objects.filter(batch__lab_id__in=ids, lab__isnull=True, status=TubeStatus.IN_TRANSIT)
                   .values_list("batch__lab_id").annotate(n=Count("id")))
    done = {r["lab_id"]: r for r in TubeResult.objects.filter(lab_id__in=ids, recorded_at__gte=day_ago)
            .values("lab_id").annotate(last_hour=Count("id", filter=Q(recorded_at__gte=hour_ago)),
                                       last_24h=Count("id"))}
    overdue = ta.overdue(scope=request.scope, now=now, limit=100)
    overdue_by_lab = overdue["by_lab"]  # counted over every overdue tube, not the 100 listed
    rows = []
    for lab in lab_list:
        b, d = backlog.get(lab.pk, {}), done.get(lab.pk, {})
        last_hour = d.get("last_hour", 0)
        rows.append({"lab": lab, "backlog": b.get("backlog", 0), "received_24h": b.get("received_24h", 0),
                     "in_transit": transit.get(lab.pk, 0), "last_hour": last_hour, "last_24h": d.get("last_24h", 0),
                     "utilisation": round(100 * last_hour / lab.capacity_per_hour) if lab.capacity_per_hour else None,
                     "hours_to_clear": round(b.get("backlog", 0) / lab.capacity_per_hour, 1)
                     if lab.capacity_per_hour else None,
                     "overdue": overdue_by_lab.get(lab.code, 0)})
    tat = ta.turnaround(scope=request.scope, since=day_ago)
    return _page(request, "testing/labs.html", rows=rows, now=now, stages=_stages(tat["overall"]),
                 by_site=tat["by_site"], tubes=tat["tubes"], overdue=overdue,
                 overdue_rows=_overdue_rows(overdue["items"]))


labs.nav_title = gettext_lazy("Labs")


@require(Perm.TESTING_VIEW)
def lab_board(request, lab_id: int):
    """One lab: receipts, backlog against capacity, throughput, outcomes today, turnaround, overdue tubes, batches on
    their way. Refreshes every minute (wall screen)."""
    lab = lab_rules.lab_get(scope=request.scope, lab_id=lab_id, actor=request.jk_user)
    board = followup.lab_board(lab=lab, scope=followup.board_scope(request.scope, request.jk_user, lab))
    from jingkong.testing import custody

    batches = list(custody.batch_list(scope=request.scope, actor=request.jk_user, lab_id=lab.pk, limit=30))
    throughput = board["throughput"]
    can_operate = _can_operate(request.jk_user, lab)
    return _page(request, "testing/lab_board.html", lab=lab, board=board, stages=_stages(board["turnaround"]),
                 overdue_rows=_overdue_rows(board["overdue"]["items"]), batches=batches,
                 utilisation_pct=min(100, round(100 * throughput["utilisation_last_hour"])),
                 over_capacity=throughput["utilisation_last_hour"] > 1, can_operate=can_operate,
                 awaited=[b for b in batches if b.status != BatchStatus.RECEIVED] if can_operate else [],
                 uploads=_uploads(request, lab) if can_operate else [], outcomes=Outcome.choices,
                 refresh=not can_operate)


def _can_operate(user, lab) -> bool:
    if not user.has_role_perm(Perm.TESTING_RESULT):
        return False
    try:
        lab_rules.ensure_can_operate(user, lab)
    except ApplicationError:  # only decides whether to show the forms: the services check again
        return False
    return True


# --- working at a lab: receive a batch, enter a result, upload a results file -----------------------------------


def _operated_lab(request, lab_id: int):
    """The lab, if the user may work for it: 404 for a lab they cannot see, 403 (a page) for one they may not work."""
    lab = lab_rules.lab_get(scope=request.scope, lab_id=lab_id, actor=request.jk_user)
    lab_rules.ensure_can_operate(request.jk_user, lab)
    return lab


def _board(lab) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("testing:lab_board", args=[lab.pk]))


def _fail(request, exc: ApplicationError) -> None:
    field = (exc.extra or {}).get("field")
    messages.error(request, exc.message if not field or exc.message.startswith(f"{field}:")
                   else f"{field}: {exc.message}")


def _codes(text: str) -> list[str]:
    """Barcodes typed or scanned into a text box: one per line, or separated by spaces, commas or semicolons."""
    return [c for c in re.split(r"[\s,;，；、]+", text or "") if c]


def _listing(codes: list[str], limit: int = 20) -> str:
    shown = ", ".join(codes[:limit])
    return shown + (_(" … and %(n)s more") % {"n": len(codes) - limit} if len(codes) > limit else "")


@require(Perm.TESTING_RESULT)
@require_POST
def lab_receive(request, lab_id: int):
    """Receive a batch by its code (optionally with the barcodes scanned on arrival: missing and unexpected tubes are
    reported), or — without a batch code — walk-in tubes by barcode."""
    from jingkong.testing import custody

    lab = _operated_lab(request, lab_id)
    code = request.POST.get("batch", "").strip()
    scanned = _codes(request.POST.get("barcodes", ""))
    try:
        if code:
            batch = TransportBatch.objects.filter(code=code, lab=lab).first()
            if batch is None:
                raise ValidationFailed(_("no batch %(code)s is addressed to this lab") % {"code": code},
                                       extra={"field": "batch"})
            report = custody.batch_receive(actor=request.jk_user, batch=batch, barcodes=scanned or None)
            what = _("Batch %(code)s") % {"code": batch.code}
        else:
            report = custody.tubes_receive(actor=request.jk_user, lab=lab, barcodes=scanned)
            what = _("Walk-in tubes")
    except ApplicationError as exc:
        _fail(request, exc)
        return _board(lab)
    messages.success(request, _("%(what)s: %(received)s tube(s) received, %(unchanged)s already received.") % {
        "what": what, "received": len(report.received), "unchanged": len(report.unchanged)})
    if report.missing:
        messages.warning(request, _("Missing (not scanned, still in transit): %(codes)s") % {
            "codes": _listing(report.missing)})
    if report.errors:
        messages.warning(request, _("Not received: %(items)s") % {"items": _listing(
            [f"{e['tube']} ({e['reason']})" for e in report.errors], 10)})
    return _board(lab)


def _ct(value: str, gene: str) -> dict:
    value = (value or "").strip()
    return {gene: value} if value else {}


@require(Perm.TESTING_RESULT)
@require_POST
def lab_result_entry(request, lab_id: int):
    """Enter one tube's result by hand (a retest tube, a re-run): the same checks as any upload."""
    from jingkong.testing.models import ResultSource
    from jingkong.testing.results import ResultRow, parse_time, results_apply

    lab = _operated_lab(request, lab_id)
    p = request.POST
    tube = p.get("tube", "").strip()
    try:
        try:
            tested_at = parse_time(p.get("tested_at", ""))
        except ValueError as exc:
            raise ValidationFailed(str(exc), extra={"field": "tested_at"}) from None
        row = ResultRow(1, tube, p.get("outcome", ""), _ct(p.get("ct_orf1ab"), "ORF1ab") | _ct(p.get("ct_n"), "N"),
                        p.get("instrument", ""), p.get("operator", ""), tested_at)
        report = results_apply(actor=request.jk_user, lab=lab, rows=[row], source=ResultSource.API,
                               source_ref="page", request=request)
    except ApplicationError as exc:
        _fail(request, exc)
        return _board(lab)
    if report.errors:
        messages.error(request, "; ".join(f"{e.field}: {e.reason}" for e in report.errors))
    elif report.unchanged:
        messages.info(request, _("Tube %(tube)s: this result was already recorded.") % {"tube": tube})
    else:
        parts = [_("Tube %(tube)s: %(outcome)s recorded.") % {"tube": tube, "outcome": Outcome(row.outcome).label
                                                               if row.outcome in Outcome.values else row.outcome}]
        if report.persons_controlled:
            parts.append(_("%(n)s person(s) controlled in place, retest tasks created.") % {
                "n": report.persons_controlled})
        if report.persons_positive:
            parts.append(_("%(n)s individual positive(s) reported to tracing.") % {"n": report.persons_positive})
        if report.persons_resample:
            parts.append(_("%(n)s person(s) to be resampled.") % {"n": report.persons_resample})
        messages.success(request, " ".join(parts))
    return _board(lab)


@require(Perm.TESTING_RESULT)
@require_POST
def lab_upload(request, lab_id: int):
    """Upload a results file (CSV or FHIR JSON): it is applied by a background job; its page shows the progress."""
    from jingkong.testing.results import enqueue_upload

    lab = _operated_lab(request, lab_id)
    fmt = request.POST.get("format", "")
    try:
        job = enqueue_upload(actor=request.jk_user, lab=lab, file=request.FILES.get("file"),
                             fmt="" if fmt == "auto" else fmt)
    except ApplicationError as exc:
        _fail(request, exc)
        return _board(lab)
    return HttpResponseRedirect(reverse("testing:lab_upload_status", args=[lab.pk, job.pk]))


def _upload_job(request, lab, job_id: int):
    from jingkong.core import selectors as core_selectors
    from jingkong.testing.results import UPLOAD_KIND

    job = core_selectors.job_get(scope=request.scope, user=request.jk_user, job_id=job_id)
    if job.kind != UPLOAD_KIND or (job.params or {}).get("lab") != lab.code:
        raise NotFound(_("upload not found"))
    return job


def _uploads(request, lab, limit: int = 10) -> list:
    from jingkong.core import selectors as core_selectors
    from jingkong.testing.results import UPLOAD_KIND

    return list(core_selectors.job_list(scope=request.scope, user=request.jk_user)
                .filter(kind=UPLOAD_KIND, params__lab=lab.code).select_related("created_by")[:limit])


@require(Perm.TESTING_RESULT)
def lab_upload_status(request, lab_id: int, job_id: int):
    """An upload's progress, then its report: counts and every rejected row (downloadable as CSV)."""
    from jingkong.testing.results import RowError, error_csv_text, upload_error_file

    lab = lab_rules.lab_get(scope=request.scope, lab_id=lab_id, actor=request.jk_user)
    job = _upload_job(request, lab, job_id)
    result = job.result if isinstance(job.result, dict) else {}
    if request.GET.get("format") == "csv" and job.status == job.Status.SUCCEEDED:
        path = upload_error_file(job)
        if path is not None:
            body = path.read_text(encoding="utf-8-sig")
        else:  # the error file is gone: the rejected rows kept with the job (the first 1,000)
            label = {"csv": "line", "fhir": "entry"}.get(result.get("source"), "row")
            body = error_csv_text([RowError(e["row"], e["field"], e["reason"], e["tube"])
                                   for e in result.get("errors", [])], row_label=label)
        response = HttpResponse("\ufeff" + body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="rejected-rows-{job.pk}.csv"'
        return response
    running = job.status in (job.Status.QUEUED, job.Status.RUNNING)
    pct = round(100 * job.progress / job.total) if job.total else None
    return _page(request, "testing/lab_upload.html", lab=lab, job=job, result=result, running=running, pct=pct,
                 file_name=(job.params or {}).get("source_ref", ""), errors=result.get("errors", []),
                 more_errors=max(0, result.get("error_count", 0) - len(result.get("errors", []))))


# --- pool-positive follow-up -------------------------------------------------------------------------------------------


def _filters(request) -> dict:
    status = request.GET.get("status", "open")
    reason = request.GET.get("reason", "")
    region = request.GET.get("region", "").strip()
    building = request.GET.get("building", "").strip()
    if status not in RetestStatus.values and status not in ("open", "all"):
        status = "open"
    if reason not in RetestReason.values:
        reason = ""
    return {"status": status, "reason": reason, "region": region, "building": building}


@require(Perm.PERSON_VIEW)
def retests(request):
    """Who must be retested (pool positive) or resampled (invalid tube) door to door, by grid and building, with their
    control status; printable for the team and exportable. Names people: every read is audited."""
    f = _filters(request)
    status = "" if f["status"] in ("open", "all") else f["status"]
    error = None
    try:
        qs = followup.retest_task_list(scope=request.scope, region=f["region"], status=status, reason=f["reason"],
                                       building=f["building"], open_only=f["status"] == "open")
        summary = followup.followup_summary(scope=request.scope)
    except ValidationFailed as exc:
        qs, summary, error = None, [], exc.message
    except NotFound:  # a region outside the scope
        qs, summary, error = None, [], _("region not found")
    limit = 5000
    tasks = list(qs[:limit]) if qs is not None else []
    total = qs.count() if qs is not None else 0
    show_phone = request.jk_user.has_role_perm(Perm.PERSON_VIEW_PHONE)
    from jingkong.testing.api.labs import retest_task_rows

    rows = retest_task_rows(tasks, show_phone=show_phone)
    export = request.GET.get("format") == "csv"
    # A refused filter (outside the area, a NUL character) is audited as the attempt, under the user's own region.
    audit.record(actor=request.jk_user, action="person.export" if export else "person.list",
                 object_type="people.person", region_code=(f["region"] if error is None else "")
                 or request.scope.prefix or "", request=request,
                 detail={"list": "testing.retest_tasks", "filters": {k: safe_text(v) for k, v in f.items() if v},
                         "count": total, "returned": len(rows), "via": "page"})
    if export:
        return _csv(rows)
    groups: OrderedDict = OrderedDict()
    for r in rows:
        grid = groups.setdefault(r["region_code"], OrderedDict())
        grid.setdefault((r["building"] or "", r["address"]), []).append(r)
    grid_names = {g["region_code"]: g["name"] for g in summary}
    grouped = [{"grid": code, "name": grid_names.get(code, ""), "buildings": [
        {"building": b, "address": a, "rows": items} for (b, a), items in buildings.items()]}
        for code, buildings in groups.items()]
    return _page(request, "testing/retests.html", filters=f, grouped=grouped, total=total, shown=len(rows),
                 limit=limit, summary=summary, error=error, statuses=RetestStatus.choices,
                 reasons=RetestReason.choices, now=clock.now(), query=request.GET.urlencode())


retests.nav_title = gettext_lazy("Pool-positive follow-up")

CSV_COLUMNS = ["region_code", "building", "address", "unit", "room", "name", "id_masked", "phone", "reason", "status",
               "test_status", "controlled_in_place", "controlled_since", "source_tube", "campaign", "created_at"]


def _csv(rows: list[dict]) -> HttpResponse:
    from jingkong.testing.results import _cell  # neutralises spreadsheet formulas in free text

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(["" if r[c] is None else (r[c].isoformat() if hasattr(r[c], "isoformat") else _cell(r[c]))
                         for c in CSV_COLUMNS])
    response = HttpResponse("\ufeff" + buf.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="retest-tasks.csv"'
    return response

