from __future__ import annotations

import datetime as dt
import io
import json
import os
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from jingkong.core import serving
from jingkong.policy.services import demo_activate

DISTRICT_CODE = "330206"
DEFAULT_SEED = 20220101

# (username, role, which region) — the region is resolved from the loaded district.
DEMO_ACCOUNTS = [
    ("commander", "commander", "district"),
    ("analyst", "analyst", "district"),
    ("tracer", "tracer", "district"),
    ("xinqi", "street_officer", "street"),
    ("community", "community_officer", "community"),
    ("grid", "grid_worker", "grid"),
    ("sampler", "sampler", "street"),
    ("lab", "lab_technician", "district"),
    ("dispatcher", "transfer_dispatcher", "district"),
    ("facility", "facility_manager", "district"),
    ("checkpoint", "checkpoint_officer", "district"),
    ("volunteer", "service_volunteer", "grid"),
    ("admin", "administrator", None),
]


def _pad(text: str, width: int) -> str:
    """Left-align in a terminal column: CJK characters take two cells."""
    import unicodedata

    cells = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cells)


class Command(BaseCommand):
    help = "Prepare a demo on the embedded database (generate and load Beilun, create accounts) and serve it."

    def add_arguments(self, parser):
        parser.add_argument("--population", type=int, default=100_000, help="Synthetic residents (default 100000).")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Generator seed (default %(default)s).")
        parser.add_argument("--days", type=int, default=14, help="Days of venue check-ins to generate (default 14).")
        parser.add_argument("--no-serve", action="store_true", help="Prepare everything, then exit.")
        parser.add_argument("--no-outbreak", action="store_true",
                            help="Do not load the outbreak in progress (the district and accounts only).")
        parser.add_argument("--real-time", action="store_true",
                            help="Serve with today's date instead of continuing the outbreak's clock.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, population, seed, days, no_serve, host, port, workers, no_outbreak=False, real_time=False,
               **options):
        if population < 1000:
            raise CommandError("--population must be at least 1000")
        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.step("Preparing the database")
        call_command("migrate", interactive=False, verbosity=0)

        state_file = data_dir / "demo-state.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        wanted = {"population": population, "seed": seed, "days": days}
        district_dir = data_dir / "districts" / f"beilun-{population}-seed{seed}-{days}d"
        if state.get("loaded") == wanted and self._district_loaded():
            self.step(f"District already loaded ({population:,} residents, seed {seed}); reusing it")
        else:
            if (district_dir / "manifest.json").exists():
                self.step(f"Reusing the generated district in {district_dir}")
            else:
                self.step(f"Generating Beilun with {population:,} synthetic residents and {days} days of check-ins")
                call_command("generate", population=population, seed=seed, out=str(district_dir), days=days)
            self.step("Loading the district into the database")
            call_command("load", str(district_dir))
            state["loaded"] = wanted
            state_file.write_text(json.dumps(state, indent=2))
        demo_activate(region_code=DISTRICT_CODE)  # the 8th-edition rules, in force from 2022-01-01 (replayable)
        self.step("Health codes: a signing key and every resident's code")
        if no_outbreak:
            call_command("codes_rotate_key", if_none=True, stdout=io.StringIO())
        else:  # the outbreak replays January 2022: the signing key must already be valid then
            from jingkong.core import clock
            from jingkong.synth.outbreak import DEFAULT_START

            with clock.frozen(DEFAULT_START - dt.timedelta(days=7)):
                call_command("codes_rotate_key", if_none=True, stdout=io.StringIO())
        call_command("codes_recompute", stdout=io.StringIO())
        if not no_outbreak:
            self._outbreak(seed, state, state_file)

        accounts = self._accounts(data_dir / "demo-accounts.json")
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo accounts (role · region · username / password):"))
        for acc in accounts:
            self.stdout.write(f"  {_pad(acc['role'], 18)} {_pad(acc['region'], 16)} {acc['username']} / {acc['password']}")
        self.stdout.write("")
        if no_serve:
            self.step("Ready. Run 'jingkong demo' again to serve it on http://127.0.0.1:8000/")
            return
        ends = (state.get("outbreak") or {}).get("ends_at") if not no_outbreak else None
        if ends and not real_time:
            from jingkong.core import clock

            os.environ.update(clock.replay_env(dt.datetime.fromisoformat(ends)))
            local = dt.datetime.fromisoformat(ends).astimezone(ZoneInfo(settings.TIME_ZONE))
            self.step(f"The clock continues the outbreak from {local:%Y-%m-%d %H:%M} ({settings.TIME_ZONE}); "
                      "--real-time serves with today's date")
        code = serving.run(host=host, port=port, workers=workers, threads=8, echo=self.stdout.write)
        if code:
            raise CommandError(f"server stopped with exit code {code}")

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"» {text}"))
        self.stdout.flush()

    def _outbreak(self, seed: int, state: dict, state_file: Path) -> None:
        """The outbreak in progress (jingkong/synth/outbreak.py), then the dashboard's figures computed once."""
        from jingkong.core import clock
        from jingkong.synth.outbreak import DEFAULT_START, is_loaded, outbreak_run

        if is_loaded():
            self.step("Outbreak in progress already loaded; reusing it")
        else:
            self.step("Replaying an outbreak in the port area (Beilun, January 2022) through the platform's services")
            result = outbreak_run(seed=seed, start=DEFAULT_START,
                                  echo=lambda text: self.stdout.write(f"  {text.strip()}"))
            cases = len(result.get("cases", [])) + len(result.get("round", {}).get("new_cases", []))
            state["outbreak"] = {"seed": seed, "ends_at": result["ends_at"], "cases": cases,
                                 "seconds": result["seconds"]}
            state_file.write_text(json.dumps(state, indent=2))
            self.step(f"Outbreak loaded in {result['seconds']:.0f} s: {cases} cases, "
                      f"{sum(result.get('contacts', {}).values()):,} contacts, {len(result.get('zones', []))} zones")
        from jingkong.dashboard import refresher

        self.step("Dashboard figures")
        ends = state.get("outbreak", {}).get("ends_at")
        try:
            if ends:  # as of the scenario's last moment: the screen shows the outbreak's "today"
                with clock.frozen(dt.datetime.fromisoformat(ends)):
                    refresher.run_pending(force=True)
            else:
                refresher.run_pending(force=True)
        except Exception as exc:  # noqa: BLE001 - the figures are recomputed by the server's worker anyway
            self.stdout.write(self.style.WARNING(f"  dashboard figures not computed now ({exc}); the server will"))

    def _district_loaded(self) -> bool:
        from jingkong.geo.models import Region
        from jingkong.people.models import Person

        return Region.objects.filter(code=DISTRICT_CODE).exists() and Person.objects.exists()

    @transaction.atomic
    def _accounts(self, secrets_file: Path) -> list[dict]:
        from jingkong.access.models import User
        from jingkong.geo.models import Region

        saved = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
        district = Region.objects.get(code=DISTRICT_CODE)
        street = Region.objects.get(code=DISTRICT_CODE + "002")  # 新碶街道, where the January 2022 cluster was
        community = street.children.order_by("code").first()
        grid = community.children.order_by("code").first() if community else None
        regions = {"district": district, "street": street, "community": community, "grid": grid}
        out = []
        for username, role, where in DEMO_ACCOUNTS:
            region = regions[where] if where else None
            password = saved.get(username) or secrets.token_urlsafe(9)
            saved[username] = password
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User(username=username)
            user.role = role
            user.region = region
            user.is_staff = user.is_superuser = role == "administrator"
            user.set_password(password)
            user.save()
            out.append({"username": username, "password": password, "role": user.get_role_display(),
                        "region": region.name if region else "—"})
        secrets_file.write_text(json.dumps(saved, indent=2))
        secrets_file.chmod(0o600)
        return out
