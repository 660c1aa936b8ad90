"""An outbreak in progress for the demo: Beilun, January 2022, replayed through the platform's own services.

Why a scenario and not fixtures: the command screen shows what the workflows produce (cases from lab results, contacts
from the check-in lake, zones from a commander's approval, rooms from arrivals…). Painting those rows directly would
show numbers no workflow could have produced and would hide any break between the parts. So every step below calls
the same service a user's click or a device's upload calls, with the clock (``jingkong.core.clock``) set to the
moment the step happens in the story:

1. day 0, 08:00 — a routine key-industry round (重点行业, 按期检测) at the port workplace of 新碶街道 (its smallest
   port terminal or port cold store with a crew of at least 30) samples the crew in 10-in-1 tubes through the batch
   scan service; the tubes are packed, handed over and received at the lab, which finds a positive pool;
2. the single-tube retest of the pool's members confirms three cases (the tracing subscriber opens them);
3. contact finding runs for the cases (the job the cases queued; household, workplace, venue check-ins);
4. zones are proposed from the cases and approved by the commander;
5. facilities with rooms and vehicles are registered; close contacts are located in waves, grouped with the cases,
   routed (OR-Tools) and moved — runs end up planned, dispatched, picked up and arrived, and the rooms fill through
   the arrival subscriber (room assignment, isolation orders);
6. day 1, night — directives cascade to the grids, most grid tasks are acknowledged; residents of the lockdown
   zones ask for services (the first ones overdue by the end), volunteers take some;
7. day 2 — the full-population round of the street is half done: half the residents swabbed, the earlier tubes
   resulted, one more positive pool; its retest is partly back, with one new case found outside quarantine (its
   contact finding is left queued for the server's worker);
8. tasks are reported done, problems raised, vehicles cross the checkpoints (referred: their drivers' health-code
   tokens cannot be signed in a replay of 2022 by the demo's current key).

The simulated truth (who is infected) is drawn from a seeded generator; everything else follows from the services.
Deterministic for a seed on the same loaded district. Idempotent: the key-group round's code marks a loaded
scenario, and a second run returns ``{"already_loaded": True, ...}`` without writing anything.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np

from jingkong.access.guard import Scope
from jingkong.core import clock

DISTRICT = "330206"
STREET = "330206002"  # 新碶街道: the port area where the January 2022 cluster was found
TERMINAL = "宁波舟山港北仑第二集装箱码头"  # the fallback when the street has no port workforce on record
MARKER = "OB-PORT-KG"  # the key-group round's code: present = the scenario is loaded
ROUND_CODE = "OB-XQ-R1"
LAB_CODE = "OB-CDC-LAB"
SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_START = dt.datetime(2022, 1, 8, 8, 0, tzinfo=SHANGHAI)

# (username, role, region kind) — the same names as `jingkong demo`'s accounts, which later give them passwords.
ACTORS = [
    ("commander", "commander", "district"),
    ("lab", "lab_technician", "district"),
    ("tracer", "tracer", "district"),
    ("dispatcher", "transfer_dispatcher", "district"),
    ("facility", "facility_manager", "district"),
    ("checkpoint", "checkpoint_officer", "district"),
]

LOCATE_WAVE = 45  # contacts located per grouping wave: at most 60 are handed over inside the grouping request
ROUND_SHARE = 0.5  # share of the street's residents swabbed in the full round so far
SCAN_BATCH = 500  # a device queue flush (the batch API's limit)


class _Clock:
    """The scenario's clock: a mutable instant the platform's clock reads (``clock.use``)."""

    def __init__(self, start: dt.datetime):
        self.start = start.astimezone(dt.UTC)
        self.at = self.start

    def __call__(self) -> dt.datetime:
        return self.at

    def set(self, hours: float) -> dt.datetime:
        """Move to ``start + hours`` (never backwards: the story only moves forward)."""
        target = self.start + dt.timedelta(hours=hours)
        self.at = max(self.at, target)
        return self.at


def is_loaded() -> bool:
    from jingkong.testing.models import Campaign

    return Campaign.objects.filter(code=MARKER).exists()


def outbreak_run(*, seed: int, start: dt.datetime, echo: Callable[[str], None] | None = None) -> dict:
    """Build the outbreak in progress; returns what it created (counts and references).

    ``start`` (aware) is the moment the key-industry screening begins; the scenario ends about two and a half days
    later. ``echo`` receives one line per step.
    """
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    if is_loaded():
        return {"already_loaded": True, "marker": MARKER}
    steps: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def say(text: str) -> None:
        """Print a step and note how long the previous one took (the demo's progress lines)."""
        now = time.perf_counter()
        if last[1]:
            steps[last[1]] = round(now - last[0], 1)
        last[0], last[1] = now, text.split(":")[0].replace("Outbreak ", "")
        if echo and text:
            echo(text)

    t = _Clock(start)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    with clock.use(t):
        s = _Story(t=t, rng=rng, say=say)
        s.actors()
        s.screening()
        s.retest()
        s.contacts()
        s.zones()
        s.facilities()
        s.transfers()
        s.directives()
        s.full_round()
        s.field_reports()
        s.checkpoints()
        s.codes()
    say("")
    s.out["step_seconds"] = steps
    s.out["seconds"] = round(time.perf_counter() - started, 1)
    s.out["ends_at"] = t.at.isoformat()
    return s.out


class _Story:
    def __init__(self, *, t: _Clock, rng: np.random.Generator, say: Callable[[str], None]):
        self.t, self.rng, self.say = t, rng, say
        self.district = Scope(DISTRICT)
        self.users: dict = {}
        self.out: dict = {"already_loaded": False}
        self.infected: set[int] = set()
        self.service_refs: list[str] = []

    # --- who acts ---------------------------------------------------------------------------------------------------

    def actors(self) -> None:
        """The demo's accounts the scenario acts as (created without a password when absent: `jingkong demo` sets
        one; an existing account is used as it is)."""
        from jingkong.access.models import User
        from jingkong.geo.models import Region

        district = Region.objects.get(code=DISTRICT)
        for username, role, _where in ACTORS:
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username, role=role, region=district)
                user.set_unusable_password()
                user.save()
            self.users[username] = user

    # --- 1. key-industry screening -----------------------------------------------------------------------------------

    def screening(self) -> None:
        from django.db.models import Q

        from jingkong.people.models import Person
        from jingkong.testing import labs, services

        self.say("Outbreak 1/9: routine key-industry screening at the port (新碶街道)")
        commander = self.users["commander"]
        self.t.set(-1)
        terminal = _screened_workplace()
        if terminal is None:
            raise RuntimeError(f"no port workplace in street {STREET}: is the Beilun district loaded?")
        self.terminal = terminal
        self.lab = labs.lab_create(actor=commander, scope=self.district, code=LAB_CODE, name="北仑区疾控中心核酸实验室",
                                   region_code=DISTRICT, capacity_per_hour=800, target_hours=12,
                                   technicians=[self.users["lab"].username])
        campaign = services.campaign_create(
            actor=commander, scope=self.district, name=f"{terminal.name} 重点行业按期检测", region_code=STREET,
            starts_at=self.t.at + dt.timedelta(hours=1), deadline=self.t.at + dt.timedelta(days=3), pool_size=10,
            key_industry=terminal_industry(terminal), code=MARKER, note="港区重点行业从业人员按期核酸检测")
        self.kg_site = services.site_create(
            actor=commander, scope=self.district, name=f"{terminal.name} 采样点", region_code=terminal.grid.code,
            lon=terminal.lon, lat=terminal.lat, kind="temporary", capacity_per_hour=240, campaign_id=campaign.pk,
            code="OB-PORT-S1")
        self.t.set(0)
        services.campaign_start(actor=commander, scope=self.district, campaign=campaign)
        self.kg_campaign = campaign
        workers: list = []
        for where in (Q(workplace=terminal), Q(industry=terminal_industry(terminal), grid__code__startswith=STREET),
                      Q(industry=terminal_industry(terminal)), ~Q(industry="")):  # a small district: widen until there is a crew
            workers = list(Person.objects.filter(where).order_by("pk").values_list("pk", "household_id"))
            if len(workers) >= 30:
                break
        if len(workers) < 10:
            raise RuntimeError("too few port workers to screen: generate a larger district")
        ids = np.array([w[0] for w in workers])
        order = self.rng.permutation(len(ids))
        queue = [int(ids[i]) for i in order]
        # the simulated truth: three infected workers who came to the site together (queued one after another): the
        # virus circulated at work first, so they are drawn among the crew members with the fewest check-ins outside
        # work in the last two days — which also keeps contact finding of a 100,000-resident demo within minutes
        quiet = _quietest(queue, self.t.start, exclude_venue=terminal.pk, rng=self.rng)
        infected = set(quiet[:3])
        first = min(queue.index(p) for p in infected)
        queue = [p for p in queue if p not in infected]
        queue[first:first] = sorted(infected, key=lambda p: quiet.index(p))
        self.infected |= infected
        self.index_household = dict(workers)[quiet[0]]
        tubes = self._scan(queue, site=self.kg_site.code, campaign=MARKER, prefix="KG", start_h=0.0, per_hour=240,
                           pool=10, device="port-pad1")
        self.t.set(5)
        positive = {b for b, members in tubes.items() if infected & set(members)}
        self._lab_results(tubes, positive, received_h=6, tested_h=9, courier="港区专线")
        self.kg_tubes = tubes
        self.out["screening"] = {"campaign": MARKER, "workers": len(queue), "tubes": len(tubes),
                                 "positive_pools": sorted(positive)}

    def _scan(self, person_ids: list[int], *, site: str, campaign: str, prefix: str, start_h: float,
              per_hour: float, pool: int, device: str, kind: str = "routine") -> dict[str, list[int]]:
        """Swab people in this order through the batch scan service (a device flushing its queue every
        ``SCAN_BATCH`` scans); returns the tubes and their members."""
        from jingkong.people.tokens import person_token
        from jingkong.testing import sampling

        tubes: dict[str, list[int]] = defaultdict(list)
        items = []
        for i, pid in enumerate(person_ids):
            barcode = f"{prefix}{i // pool + 1:06d}"
            at = self.t.start + dt.timedelta(hours=start_h + i / per_hour)
            items.append((at, {"client_scan_id": f"{prefix}-{device}-{i:07d}", "tube": barcode,
                               "person_token": person_token(pid), "sampled_at": at.isoformat(), "pool_size": pool,
                               "tube_kind": kind}))
            tubes[barcode].append(pid)
        commander = self.users["commander"]
        for b in range(0, len(items), SCAN_BATCH):
            chunk = items[b:b + SCAN_BATCH]
            self.t.at = max(self.t.at, chunk[-1][0] + dt.timedelta(minutes=1))
            outcome = sampling.scans_record(actor=commander, scope=self.district, items=[x for _at, x in chunk],
                                            site=site, device=device, campaign=campaign)
            rejected = outcome.counts.get("rejected", 0) if hasattr(outcome, "counts") else 0
            if rejected:
                first = next(r for r in outcome.results if r.status == "rejected")
                raise RuntimeError(f"scan refused: {first.field}: {first.reason}")
        return dict(tubes)

    def _lab_results(self, tubes: dict[str, list[int]], positive: set[str], *, received_h: float, tested_h: float,
                     courier: str, site=None) -> dict:
        """Seal, pack, hand over and receive the tubes at the lab, then enter their results (chain of custody)."""
        from jingkong.testing import custody
        from jingkong.testing.results import ResultRow, results_apply

        commander, lab_user = self.users["commander"], self.users["lab"]
        barcodes = sorted(tubes)
        site = site or self.kg_site
        self.t.set(received_h - 1)
        seal_open_tubes(barcodes, actor=commander, scope=self.district)
        batch, _added = custody.batch_pack(actor=commander, scope=self.district, lab=self.lab, barcodes=barcodes,
                                           site=site)
        custody.batch_hand_over(actor=commander, batch=batch, courier=courier)
        self.t.set(received_h)
        custody.batch_receive(actor=lab_user, batch=batch, barcodes=barcodes)
        self.t.set(tested_h)
        rows = []
        for i, b in enumerate(barcodes):
            if b in positive:
                ct = round(float(self.rng.uniform(24, 33)), 1)
                rows.append(ResultRow(row=i, tube=b, outcome="positive", ct_values={"ORF1ab": ct, "N": ct - 1.2},
                                      instrument="SLAN-96P", operator="检验员", tested_at=self.t.at))
            else:
                rows.append(ResultRow(row=i, tube=b, outcome="negative", instrument="SLAN-96P", operator="检验员",
                                      tested_at=self.t.at))
        report = results_apply(actor=lab_user, lab=self.lab, rows=rows, source_ref=f"outbreak-{barcodes[0]}")
        if report.errors:
            raise RuntimeError(f"lab results refused: {report.errors[:3]}")
        return report.summary()

    # --- 2. single-tube retest ---------------------------------------------------------------------------------------

    def retest(self) -> None:
        from jingkong.testing.models import RetestTask
        from jingkong.tracing.models import Case

        self.say("Outbreak 2/9: single-tube retest of the positive pools; cases confirmed")
        self.t.set(10)
        waiting = list(RetestTask.objects.filter(status="open").order_by("person_id")
                       .values_list("person_id", flat=True).distinct())
        tubes = self._scan(waiting, site=self.kg_site.code, campaign=MARKER, prefix="KR", start_h=10.5, per_hour=30,
                           pool=1, device="port-pad2", kind="retest")
        positive = {b for b, members in tubes.items() if self.infected & set(members)}
        self._lab_results(tubes, positive, received_h=12, tested_h=15, courier="应急专送")
        self.t.set(15.5)
        cases = list(Case.objects.filter(person_id__in=self.infected).order_by("pk"))
        self.cases = cases
        self.out["retest"] = {"people": len(waiting), "positives": len(positive)}
        self.out["cases"] = [c.ref for c in cases]

    # --- 3. contacts ---------------------------------------------------------------------------------------------------

    def contacts(self) -> None:
        from jingkong.core import jobs
        from jingkong.core.models import Job
        from jingkong.tracing import services as tracing
        from jingkong.tracing.models import Contact

        self.say(f"Outbreak 3/9: contact finding for {len(self.cases)} cases (households, workplace, check-ins)")
        self.t.set(16)
        tracer = self.users["tracer"]
        for case in self.cases:
            tracing.case_assign(actor=self.users["commander"], scope=self.district, case=case,
                                username=tracer.username)
        queued = Job.objects.filter(kind="tracing.find_contacts", status=Job.Status.QUEUED).exists()
        if queued:  # the job the cases queued on commit: the worker takes it, as in the server
            jobs.work(once=True)
            job = Job.objects.filter(kind="tracing.find_contacts").order_by("-pk").first()
            if job.status != Job.Status.SUCCEEDED:
                raise RuntimeError(f"contact finding failed: {job.message}")
        else:  # the queue was not reached (e.g. a test transaction): the tracer starts the search by hand
            job = jobs.run_now("tracing.find_contacts", {"case_ids": [c.pk for c in self.cases]}, actor=tracer)
            if job.status != Job.Status.SUCCEEDED:
                raise RuntimeError(f"contact finding failed: {job.message}")
        counts = defaultdict(int)
        for tier in Contact.objects.values_list("tier", flat=True):
            counts[tier] += 1
        self.out["contacts"] = dict(counts)

    # --- 4. zones ------------------------------------------------------------------------------------------------------

    def zones(self) -> None:
        from jingkong.core.exceptions import ApplicationError
        from jingkong.zones import services as zones
        from jingkong.zones.models import Zone

        self.say("Outbreak 4/9: zones proposed from the cases and approved by the commander")
        self.t.set(18)
        commander = self.users["commander"]
        proposed: list = []
        for case in self.cases:
            try:
                proposed += zones.propose_from_case(case, actor=self.users["tracer"])
            except ApplicationError as exc:  # e.g. no known place: the case simply gets no proposal
                self.out.setdefault("notes", []).append(f"{case.ref}: no zone proposal ({exc.message})")
        self.t.set(20)
        approved = []
        for zone in sorted({z.pk: z for z in proposed}.values(), key=lambda z: z.pk):
            zone = Zone.objects.get(pk=zone.pk)
            if zone.status == "proposed":
                approved.append(zones.zone_approve(zone, actor=commander, reason="指挥部研判同意").ref)
        self.out["zones"] = approved

    # --- 6a. facilities and vehicles -------------------------------------------------------------------------------------

    def facilities(self) -> None:
        from jingkong.geo.models import Region
        from jingkong.isolation import facilities as fac
        from jingkong.isolation import transfers

        self.say("Outbreak 5/9: quarantine hotels, designated hospital and vehicles made ready")
        self.t.set(21)
        manager, dispatcher = self.users["facility"], self.users["dispatcher"]
        streets = {r.code: r for r in Region.objects.filter(code__startswith=DISTRICT, level="street")}
        home = streets.get(STREET) or next(iter(streets.values()))
        other = streets.get("330206005") or home
        made = []
        for code, name, kind, region, floors, per_floor, dlon, dlat in (
                ("OB-HOTEL-1", "北仑富邦大酒店（集中隔离点）", "quarantine_hotel", home, [2, 3, 4], 20, 0.010, 0.006),
                ("OB-HOTEL-2", "新碶假日酒店（集中隔离点）", "quarantine_hotel", other, [2, 3], 15, -0.008, 0.004),
                ("OB-HOSP-1", "北仑区人民医院（定点救治）", "designated_hospital", home, [5], 12, -0.004, -0.006)):
            f = fac.facility_create(actor=manager, scope=self.district, code=code, name=name, kind=kind,
                                    region_code=region.code, lon=region.center_lon + dlon,
                                    lat=region.center_lat + dlat, address=name)
            fac.rooms_bulk_create(actor=manager, facility=f, floors=floors, rooms_per_floor=per_floor)
            made.append(f)
        self.facility_list = made
        vehicles = []
        for i in range(6):
            vehicles.append(transfers.vehicle_save(
                actor=dispatcher, scope=self.district, code=f"OB-V{i + 1:02d}", plate=f"浙B·D{7301 + i}",
                type="minibus", seats=12 if i % 2 else 9, depot_lon=home.center_lon - 0.01 + 0.004 * i,
                depot_lat=home.center_lat - 0.005, depot_label="北仑区转运车队", driver_name=f"转运司机{i + 1}",
                region_code=DISTRICT))
        vehicles.append(transfers.vehicle_save(
            actor=dispatcher, scope=self.district, code="OB-A01", plate="浙B·J1201", type="ambulance", seats=2,
            accessible=True, depot_lon=home.center_lon, depot_lat=home.center_lat - 0.008, depot_label="120 急救站",
            driver_name="急救司机", region_code=DISTRICT))
        vehicles.append(transfers.vehicle_save(
            actor=dispatcher, scope=self.district, code="OB-A02", plate="浙B·J1202", type="ambulance", seats=4,
            accessible=True, depot_lon=home.center_lon + 0.01, depot_lat=home.center_lat - 0.008,
            depot_label="120 急救站", driver_name="急救司机", region_code=DISTRICT))
        self.vehicles = vehicles
        self.out["facilities"] = [f.code for f in made]
        self.out["vehicles"] = len(vehicles)

    # --- 6b. locate, group, route, move ---------------------------------------------------------------------------------

    def _locate(self, n: int, at_h: float) -> int:
        """Grid workers reach ``n`` more close contacts (nearest deadline first) and mark them located."""
        from jingkong.tracing import services as tracing
        from jingkong.tracing.models import Contact

        self.t.set(at_h)
        tracer = self.users["tracer"]
        todo = list(Contact.objects.filter(tier="close", status__in=["identified", "notified"])
                    .order_by("due_at", "pk")[:n])
        for k in todo:
            tracing.contact_status_set(actor=tracer, contact=k, status="located", scope=self.district)
        return len(todo)

    def transfers(self) -> None:
        from jingkong.isolation import grouping, transfers
        from jingkong.isolation.models import Transfer

        self.say("Outbreak 6/9: contacts located, grouped, routed (OR-Tools) and transferred")
        dispatcher = self.users["dispatcher"]
        from jingkong.tracing.models import Contact

        # two waves even in a small district: at most half of the close contacts are reached in the first one
        reachable = Contact.objects.filter(tier="close", status__in=["identified", "notified"]).count()
        located = self._locate(min(LOCATE_WAVE, max(1, reachable // 2)), 22)
        self.t.set(23)
        g1 = grouping.group_waiting(actor=dispatcher, scope=self.district)
        self.t.set(23.5)
        p1 = transfers.plan_transfers(actor=dispatcher, scope=self.district, time_limit_s=2.0)
        runs = list(Transfer.objects.filter(status="planned").order_by("pk"))
        # the runs carrying cases and most others go all the way; one is on the road; the last of several waits
        states = self._run_states(runs, ["arrived", "arrived", "picked_up"], keep_last=len(runs) > 3)
        for i, (run, state) in enumerate(zip(runs, states, strict=True)):
            if run.stops.filter(batch__members__role="case").exists():
                state = "arrived"
            self._move(run, state, start_h=24 + 0.25 * i)
        # the vehicles back from a run are disinfected and the second wave is grouped and planned
        self.t.set(30)
        for v in transfers.Vehicle.objects.filter(code__startswith="OB-", disinfection="due").order_by("pk"):
            transfers.vehicle_save(actor=dispatcher, scope=self.district, vehicle=v, disinfection="clean")
        self.service_refs += self._service_requests(0, 5)  # the first night in lockdown: overdue by now
        located += self._locate(LOCATE_WAVE, 31)
        self.t.set(32)
        g2 = grouping.group_waiting(actor=dispatcher, scope=self.district)
        self.t.set(32.5)
        p2 = transfers.plan_transfers(actor=dispatcher, scope=self.district, time_limit_s=2.0)
        second = list(Transfer.objects.filter(status="planned").order_by("pk"))
        for i, (run, state) in enumerate(zip(second, self._run_states(second, ["dispatched", "arrived", "picked_up"],
                                                                      keep_last=len(second) > 1), strict=True)):
            self._move(run, state, start_h=33 + 0.25 * i)
        self.service_refs += self._service_requests(len(self.service_refs), 4)
        # a third, small wave located at night waits for grouping in the morning
        located += self._locate(LOCATE_WAVE // 3, 38)
        by_status: dict[str, int] = defaultdict(int)
        for status in Transfer.objects.values_list("status", flat=True):
            by_status[status] += 1
        self.out["transfers"] = {"located": located, "grouped": g1["people"] + g2["people"],
                                 "batches": g1["batches"] + g2["batches"],
                                 "planned_runs": p1.get("transfers", p1.get("runs")),
                                 "second_plan": p2.get("transfers", p2.get("runs")), "runs": dict(by_status)}

    @staticmethod
    def _run_states(runs: list, cycle: list[str], *, keep_last: bool) -> list[str]:
        """Where each run of a plan stands at the end of the story: ``cycle`` repeated, the last one still planned."""
        states = [cycle[i % len(cycle)] for i in range(len(runs))]
        if keep_last and states:
            states[-1] = "planned"
        return states

    def _move(self, run, state: str, *, start_h: float) -> None:
        """Dispatch a run and work through its stops in order until it is ``state`` (planned: nothing;
        dispatched: left the depot; picked_up: its first batch aboard; arrived: every stop done)."""
        from jingkong.isolation import transfers
        from jingkong.isolation.models import TransferStop

        if state == "planned":
            return
        dispatcher = self.users["dispatcher"]
        self.t.set(start_h)
        run = transfers.transfer_status(actor=dispatcher, transfer=run, status="dispatched")
        if state == "dispatched":
            return
        h = start_h
        for stop in TransferStop.objects.filter(transfer=run).order_by("seq"):
            h += 0.3
            self.t.set(h)
            if stop.kind == "pickup":
                transfers.transfer_status(actor=dispatcher, transfer=run, status="at_pickup", stop_id=stop.pk)
                self.t.set(h + 0.1)
                transfers.transfer_status(actor=dispatcher, transfer=run, status="picked_up", stop_id=stop.pk)
                if state == "picked_up":
                    return
            else:
                transfers.transfer_status(actor=dispatcher, transfer=run, status="arrived", stop_id=stop.pk)

    # --- 5. the full round, half done -----------------------------------------------------------------------------------

    def full_round(self) -> None:
        from jingkong.geo.models import Building, Region
        from jingkong.people.models import Person
        from jingkong.testing import services
        from jingkong.testing.models import Campaign

        self.say("Outbreak 8/9: full-population round of 新碶街道 (about half sampled, results coming in)")
        commander = self.users["commander"]
        self.t.set(42)  # day 1, 02:00: the round is announced for the morning
        campaign = services.campaign_create(
            actor=commander, scope=self.district, name="新碶街道第一轮全员核酸检测", region_code=STREET,
            starts_at=self.t.start + dt.timedelta(hours=47), deadline=self.t.start + dt.timedelta(hours=60),
            pool_size=10, code=ROUND_CODE, note="发现港区聚集性疫情后的区域全员检测")
        communities = list(Region.objects.filter(parent__code=STREET, level="community").order_by("code"))
        sites = {}
        for i, com in enumerate(communities):
            b = (Building.objects.filter(grid__code__startswith=com.code).order_by("code").first())
            lon, lat = (b.lon, b.lat) if b else (com.center_lon, com.center_lat)
            site = services.site_create(actor=commander, scope=self.district, name=f"{com.name} 临时采样点",
                                        region_code=com.code, lon=lon, lat=lat, kind="temporary",
                                        capacity_per_hour=300, campaign_id=campaign.pk, code=f"OB-XQ-S{i + 1:02d}")
            sites[com.code] = site
        self.t.set(47)
        services.campaign_start(actor=commander, scope=self.district, campaign=campaign)
        # half the residents, community by community, each site swabbing its people in arrival order
        from jingkong.tracing.models import Case, Contact

        away = set(Case.objects.values_list("person_id", flat=True)) | set(
            Contact.objects.filter(status__in=["handed_over", "in_quarantine"]).values_list("person_id", flat=True))
        people = [p for p in Person.objects.filter(grid__code__startswith=STREET).order_by("pk")
                  .values_list("pk", "grid__code") if p[0] not in away]
        take = self.rng.random(len(people)) < ROUND_SHARE
        by_site: dict[str, list[int]] = defaultdict(list)
        for (pid, grid), keep in zip(people, take, strict=True):
            if keep and grid[:12] in sites:
                by_site[grid[:12]].append(pid)
        # infected at home before the index case was isolated, not yet reached by the tracers: a member of the index
        # case's household, else another close contact still at home in the street, is swabbed in the round
        at_home = [p for p in Contact.objects.filter(status__in=["identified", "notified"],
                                                     region_code__startswith=STREET)
                   .order_by("pk").values_list("person_id", "person__household_id", "region_code", "tier")
                   if p[0] not in away and p[2][:12] in sites]
        at_home.sort(key=lambda p: (p[1] != self.index_household, p[3] != "close", p[0]))
        late_positive: set[int] = set()
        for pid, _household, grid, _tier in at_home[:1]:
            late_positive.add(pid)
            if pid not in by_site[grid[:12]]:
                by_site[grid[:12]].insert(0, pid)
        self.infected |= late_positive
        all_tubes: dict[str, list[int]] = {}
        resulted: dict[str, list[int]] = {}
        for i, (com, pids) in enumerate(sorted(by_site.items())):
            order = [pids[j] for j in self.rng.permutation(len(pids))]
            if late_positive & set(pids):  # early in the morning: resulted by now
                lp = next(iter(late_positive & set(pids)))
                order.remove(lp)
                order.insert(3, lp)
            per_hour = max(60.0, len(order) / 6.0)  # every site finishes its share by about 14:00
            tubes = self._scan(order, site=sites[com].code, campaign=ROUND_CODE, prefix=f"XQ{i + 1:02d}T",
                               start_h=47.5, per_hour=per_hour, pool=10, device=f"xq-pad{i + 1}")
            all_tubes.update(tubes)
            early = sorted(tubes)[: (len(tubes) + 1) // 2]
            resulted.update({b: tubes[b] for b in early})
        self.t.set(52)
        positive = {b for b, members in resulted.items() if self.infected & set(members)}
        for site_code in sorted({s.code for s in sites.values()}):
            prefix = f"XQ{int(site_code[-2:]):02d}T"
            batch = {b: m for b, m in resulted.items() if b.startswith(prefix)}
            if batch:
                self._lab_results(batch, positive & set(batch), received_h=53, tested_h=56, courier="区疾控转运",
                                  site=next(s for s in sites.values() if s.code == site_code))
        self.t.set(56.1)
        new_cases = self._round_retest(positive)
        sampled = sum(len(m) for m in all_tubes.values())
        self.out["round"] = {"campaign": Campaign.objects.get(code=ROUND_CODE).code, "sampled": sampled,
                             "residents": len(people), "tubes": len(all_tubes), "resulted_tubes": len(resulted),
                             "positive_pools": sorted(positive), "new_cases": new_cases}

    def _round_retest(self, positive: set[str]) -> list[str]:
        """The positive pools' members are swabbed again at home (single tubes). The lab has the first tubes back by
        evening: the infected member is today's case, found in the community; the others' results are still to come.
        The new case's contact finding is queued by the platform (the server's worker takes it)."""
        from jingkong.testing.models import RetestTask, Tube
        from jingkong.tracing.models import Case

        if not positive:
            return []
        site = Tube.objects.select_related("site").get(barcode=sorted(positive)[0]).site
        waiting = list(RetestTask.objects.filter(status="open").order_by("person_id")
                       .values_list("person_id", flat=True).distinct())
        tubes = self._scan(waiting, site=site.code, campaign=ROUND_CODE, prefix="XR", start_h=56.2, per_hour=20,
                           pool=1, device="xq-door", kind="retest")
        others = sorted(b for b, m in tubes.items() if not self.infected & set(m))
        back = {b: m for b, m in tubes.items() if self.infected & set(m) or b in others[1::2]}
        before = set(Case.objects.values_list("pk", flat=True))
        self._lab_results(back, {b for b, m in back.items() if self.infected & set(m)}, received_h=57.2,
                          tested_h=57.6, courier="应急专送", site=site)
        return list(Case.objects.exclude(pk__in=before).order_by("pk").values_list("ref", flat=True))

    # --- 7. command: directives, problems, services --------------------------------------------------------------------

    def directives(self) -> None:
        from jingkong.command import directives, tasks
        from jingkong.command.models import Task

        self.say("Outbreak 7/9: directives cascade to the grids")
        commander = self.users["commander"]
        self.t.set(38.5)  # day 1, 22:30: the command post decides the full round and the zone rules
        d1 = directives.directive_issue(
            actor=commander, scope=self.district, title="新碶街道全员核酸检测组织发动", category="sampling_sweep",
            text="各网格于次日8:00前完成入户通知，组织居民分时段到临时采样点采样，行动不便者上门采样。",
            region_codes=[STREET], deadline=self.t.start + dt.timedelta(hours=60), client_key="ob-d1")
        self.t.set(39)
        d2 = directives.directive_issue(
            actor=commander, scope=self.district, title="封控区足不出户管控与生活保障",
            category="zone_enforcement", text="封控区实行“足不出户、上门服务”，网格员每日排查并上报。",
            region_codes=[STREET], deadline=self.t.start + dt.timedelta(hours=54), client_key="ob-d2")
        self.grid_tasks = list(Task.objects.filter(directive__in=[d1, d2], level="grid").order_by("pk"))
        self.rolls = self.rng.random(len(self.grid_tasks))
        acked = 0
        for i, task in enumerate(self.grid_tasks):  # most grid workers acknowledge during the night
            if self.rolls[i] < 0.2:
                continue
            self.t.set(39.2 + 2.5 * i / max(1, len(self.grid_tasks)))
            tasks.task_acknowledge(actor=commander, task=task)
            acked += 1
        self.out["command"] = {"directives": [d1.ref, d2.ref], "grid_tasks": len(self.grid_tasks),
                               "acknowledged": acked}

    def _service_requests(self, first: int, n: int) -> list[str]:
        """Residents of the lockdown zones ask for help through the public service page."""
        from jingkong.command import requests
        from jingkong.people.models import Person
        from jingkong.zones.models import ZoneResident

        residents = list(Person.objects.filter(pk__in=ZoneResident.objects.values("person_id"))
                         .exclude(pk__in=self.infected).order_by("pk")[first:first + n])
        if first == 0:  # the volunteers of the first residents' grids (requests from the others wait unassigned)
            from jingkong.command import workers

            for i, grid in enumerate(sorted({p.grid.code for p in residents if p.grid_id})[:2]):
                workers.worker_create(actor=self.users["commander"], scope=self.district, name=f"志愿者{i + 1}",
                                      role="volunteer", region_code=grid, phone=f"1380574{i:04d}")
        wishes = (("medicine", "高血压药快吃完了，需要代购硝苯地平缓释片"),
                  ("food", "家中老人独居，需要配送米面蔬菜"),
                  ("garbage", "封控三天，生活垃圾需要上门收运"),
                  ("psychological", "孩子情绪焦虑，希望有心理咨询"),
                  ("medical_visit", "孕晚期需要按期产检"))
        refs = []
        for i, person in enumerate(residents, start=first):
            category, text = wishes[i % len(wishes)]
            self.t.set((self.t.at - self.t.start).total_seconds() / 3600 + 0.2)
            req, _created = requests.request_submit(person=person, category=category, description=text,
                                                    client_key=f"ob-r{i}")
            refs.append(req.ref)
        return refs

    def field_reports(self) -> None:
        from jingkong.command import problems, tasks
        from jingkong.command.models import Task
        from jingkong.zones.models import ZoneResident

        self.say("Outbreak 9/9: tasks reported, problems raised, more service requests")
        commander = self.users["commander"]
        done = 0
        for i, task in enumerate(self.grid_tasks):
            if self.rolls[i] <= 0.55:
                continue
            self.t.set(58 + 0.5 * i / max(1, len(self.grid_tasks)))
            tasks.task_report(actor=commander, task=Task.objects.get(pk=task.pk), status="done",
                              count=int(self.rng.integers(40, 400)), note="已完成入户通知")
            done += 1
        self.t.set(58.6)
        grids = sorted(set(ZoneResident.objects.values_list("person__grid__code", flat=True).distinct()[:50]))[:3]
        reported = []
        for i, (category, urgency, text) in enumerate((
                ("queue_too_long", "urgent", "临时采样点排队超过200人，需增派采样人员"),
                ("movement_in_lockdown", "critical", "封控楼栋有居民外出倒垃圾"),
                ("supply_shortage", "normal", "采样点10混1采样管库存不足半天用量"),
                ("unmanned_post", "urgent", "封控区东侧出入口卡点夜间无人值守"))):
            self.t.set(58.6 + 0.2 * i)
            region = grids[i % len(grids)] if grids else STREET
            reported.append(problems.problem_report(actor=commander, scope=self.district, category=category,
                                                    urgency=urgency, description=text, region_code=region,
                                                    client_key=f"ob-p{i}").ref)
        self.service_refs += self._service_requests(len(self.service_refs), 4)
        # the volunteers at work: one request on its way, one delivered
        from jingkong.command import requests
        from jingkong.command.models import ServiceRequest

        for req, steps in zip(ServiceRequest.objects.filter(ref__in=self.service_refs, status="assigned").order_by("pk"),
                              (["in_progress"], ["in_progress", "delivered"]), strict=False):
            for status in steps:
                self.t.set((self.t.at - self.t.start).total_seconds() / 3600 + 0.3)
                requests.request_status(actor=commander, req=req, status=status, note="志愿者上门")
        self.out["command"] |= {"done": done, "problems": reported, "service_requests": self.service_refs}

    # --- checkpoints --------------------------------------------------------------------------------------------------

    def checkpoints(self) -> None:
        """A checkpoint at the first lockdown zone's boundary and one on the road out of the street: officers scan
        the residents' health-code tokens (a lockdown resident trying to leave is turned back)."""
        from jingkong.codes import checkpoints as cps
        from jingkong.geo.models import Building, Region
        from jingkong.zones.models import RiskArea, Zone, ZoneResident

        officer = self.users["checkpoint"]
        lockdown = Zone.objects.filter(type="lockdown", status="approved").order_by("pk").first()
        street = Region.objects.get(code=STREET)
        made = []
        if lockdown is not None:
            b = (Building.objects.filter(pk__in=ZoneResident.objects.filter(zone=lockdown)
                                         .values("person__building_id")).order_by("pk").first())
            grid = b.grid.code[:12] if b else STREET  # a checkpoint stands in a division (community)
            made.append((cps.checkpoint_create(actor=self.users["commander"], scope=self.district, code="OB-CP-Z1",
                                               name=f"{lockdown.name} 出入口", kind="zone_boundary", region_code=grid,
                                               lon=b.lon if b else street.center_lon,
                                               lat=b.lat if b else street.center_lat, zone=lockdown.ref,
                                               staff=[officer.username]), lockdown))
        made.append((cps.checkpoint_create(actor=self.users["commander"], scope=self.district, code="OB-CP-R1",
                                           name="新碶—大碶 公路卡口", kind="road", region_code=STREET,
                                           lon=street.center_lon + 0.02, lat=street.center_lat,
                                           staff=[officer.username]), None))
        # vehicles at the checkpoints (the residents' health-code tokens are signed by the demo's current key, which
        # a replay of January 2022 cannot use): lorries from outside, cars leaving the lockdown zone's community
        risky = (RiskArea.objects.filter(withdrawn_at__isnull=True, level="high").order_by("pk")
                 .values_list("area_code", flat=True).first() or "")[:12]
        origins = ["330203", "330212", "330211", "330283", "330205"]
        decisions: dict[str, int] = defaultdict(int)
        n = 0
        for cp, zone in made:
            for i in range(6 if zone is not None else 18):
                n += 1
                self.t.set(59.5 + 0.05 * n)
                from_zone = bool(risky) and (zone is not None or i % 4 == 3)
                origin = risky if from_zone else origins[i % len(origins)]
                result, _created = cps.verify_and_log(
                    actor=officer, scope=self.district, checkpoint_code=cp.code,
                    raw={"subject": "vehicle", "plate": f"浙B{10000 + int(self.rng.integers(0, 89999)):05d}",
                         "origin_code": origin, "direction": "in", "client_id": f"ob-x{n:04d}",
                         "at": self.t.at.isoformat()})
                decisions[result.decision] += 1
        self.out["checkpoints"] = {"checkpoints": [cp.code for cp, _z in made], "crossings": dict(decisions)}

    def codes(self) -> None:
        """Health codes follow the events as they happen (the codes subscribers); nothing to add here."""
        return None


def _screened_workplace():
    """The port workplace of the street whose crew is screened: the smallest port terminal or port cold store with a
    crew of at least 30 (else the largest one), so that the index cases' workplace contacts stay one crew."""
    from django.db.models import Count

    from jingkong.geo.models import Venue
    from jingkong.people.models import Person

    crews = dict(Person.objects.filter(workplace__type__in=["port_terminal", "cold_chain"],
                                       workplace__grid__code__startswith=STREET)
                 .values_list("workplace_id").annotate(n=Count("id")).order_by("workplace_id"))
    if not crews:
        return (Venue.objects.filter(name=TERMINAL).first()
                or Venue.objects.filter(type="port_terminal", grid__code__startswith=STREET).order_by("code").first())
    big_enough = sorted((n, vid) for vid, n in crews.items() if n >= 30)
    chosen = big_enough[0][1] if big_enough else max(crews, key=lambda v: (crews[v], -v))
    return Venue.objects.get(pk=chosen)


def terminal_industry(venue) -> str:
    return "cold_chain" if venue.type == "cold_chain" else "port"


def _quietest(person_ids: list[int], before: dt.datetime, *, exclude_venue: int, rng: np.random.Generator) -> list[int]:
    """``person_ids`` ordered by their check-ins (outside ``exclude_venue``) in the two days ``before``, fewest first
    (ties in a seeded random order)."""
    from jingkong.tracing.lake import CheckinLake

    start = before.astimezone(dt.UTC) - dt.timedelta(days=2)
    counts = dict.fromkeys(person_ids, 0)
    for row in CheckinLake().stays_of(person_ids, start, before.astimezone(dt.UTC), with_venues=False):
        if row["venue_id"] != exclude_venue:
            counts[row["person_id"]] += 1
    tie = dict(zip(person_ids, rng.permutation(len(person_ids)).tolist(), strict=True))
    return sorted(person_ids, key=lambda p: (counts[p], tie[p]))


def seal_open_tubes(barcodes: list[str], *, actor, scope: Scope) -> int:
    """Seal the tubes still open (the last tube of a queue is rarely full) through the sampling service."""
    from jingkong.testing import sampling
    from jingkong.testing.models import Tube

    n = 0
    for barcode in Tube.objects.filter(barcode__in=barcodes, status="open").order_by("barcode").values_list(
            "barcode", flat=True):
        sampling.tube_seal(actor=actor, scope=scope, barcode=barcode)
        n += 1
    return n
