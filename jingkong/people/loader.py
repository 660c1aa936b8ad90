"""Loading a whole district directory (docs/district-format.md): regions, buildings, venues, households, persons."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from django.db import transaction

from jingkong.core import bulk
from jingkong.core.exceptions import ValidationFailed
from jingkong.geo import loaders
from jingkong.people import importer

HOUSEHOLD_COLUMNS = ["code", "building_id", "grid_id", "unit", "room"]


@transaction.atomic
def households_load(path: str | Path) -> loaders.LoadReport:
    """Upsert households from ``households.csv`` (household_code,building_code,unit,room); grid from the building."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT code, id, grid_id FROM geo_building")
        buildings = {code: (bid, gid) for code, bid, gid in c.fetchall()}
    report = loaders.LoadReport()
    rows, seen = [], set()
    for line, r in loaders._records(path):
        report.rows += 1
        code, building = r.get("household_code", ""), buildings.get(r.get("building_code", ""))
        if not code or code in seen or building is None:
            reason = ("household_code: required field is empty" if not code else
                      "household_code: duplicate code in the file" if code in seen else "building_code: unknown building code")
            report.errors.append({"line": line, "reason": reason})
            continue
        seen.add(code)
        rows.append((code, building[0], building[1], r.get("unit", "")[:16], r.get("room", "")[:16]))
    if rows and bulk.load_into_empty("people_household", HOUSEHOLD_COLUMNS, rows):
        report.written = len(rows)  # the first load of a district: one insert, indexes built afterwards
        return report
    for i in range(0, len(rows), 50_000):
        report.written += bulk.bulk_upsert("people_household", HOUSEHOLD_COLUMNS, rows[i: i + 50_000],
                                           conflict_columns=["code"], update_columns=HOUSEHOLD_COLUMNS[1:])
    return report


def load_district(directory: str | Path, *, actor=None, echo: Callable[[str], None] | None = None,
                  progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Load (or re-load: idempotent upserts by code) a district directory. Returns a report per file."""
    from jingkong.geo.services import region_counts_refresh, regions_import_geojson

    root = Path(directory)
    say = echo or (lambda message: None)
    if not (root / "regions.geojson").exists():
        raise ValidationFailed(f"{root} is not a district directory (no regions.geojson)")
    report: dict = {}
    manifest = root / "manifest.json"
    if manifest.exists():
        report["manifest"] = {k: v for k, v in json.loads(manifest.read_text("utf-8")).items()
                              if k in ("format", "district_code", "district_name", "population", "synthetic")}
    steps = ["regions", "buildings", "venues", "households", "persons", "checkins", "counts"]

    def step(i: int, name: str) -> None:
        say(f"[{i + 1}/{len(steps)}] {name}…")
        if progress:
            progress(i, len(steps), name)

    step(0, "regions")
    regions = regions_import_geojson(root / "regions.geojson", actor=actor)
    report["regions"] = {k: v for k, v in regions.as_dict().items() if k != "problems"} | {
        "problems": len(regions.problems)}
    for i, (name, fn) in enumerate((("buildings", loaders.buildings_load), ("venues", loaders.venues_load),
                                    ("households", households_load)), start=1):
        step(i, name)
        path = root / f"{name}.csv"
        if path.exists():
            report[name] = fn(path).as_dict()
            counts = report[name]
            say(f"    {counts['written']:,} {name} ({counts['error_count']} rejected, "
                f"{counts.get('warning_count', 0)} warnings)")
            for kind in ("errors", "warnings"):
                for item in counts.get(kind, [])[:10]:
                    say(f"      {name}.csv line {item['line']}: {item['reason']}")
    step(4, "persons")
    if (root / "persons.csv").exists():
        manifest_data = report.get("manifest", {})
        source = "synthetic" if manifest_data.get("synthetic") else "import"
        result = importer.import_persons(
            root / "persons.csv", actor=actor, refresh_counts=False, source=source,
            progress=(lambda done, total, msg: say(f"    {done:,}/{total:,} {msg}")),
        )
        report["persons"] = result.summary()
        say(f"    {result.created:,} created, {result.updated:,} updated, {result.rejected:,} rejected "
            f"in {result.seconds:.1f} s")
    step(5, "checkins")
    from jingkong.tracing.lake import checkins_load, input_files

    if (root / "checkins").is_dir() and input_files(root, "checkins")[1]:  # to the check-in lake, not the DB
        checkins = checkins_load(root, progress=(lambda done, total, msg: say(f"    {msg}"))).as_dict()
        report["checkins"] = {k: v for k, v in checkins.items() if k not in ("errors", "flags")} | {
            "errors": {reason: item["rows"] for reason, item in checkins["errors"].items()},
            "flags": {reason: item["rows"] for reason, item in checkins["flags"].items()}}
        say(f"    {checkins['loaded']:,} check-ins in {len(checkins['days'])} day(s), {checkins['rejected']:,} rejected")
    step(6, "counts")
    report["counts"] = region_counts_refresh(actor=actor)
    if progress:
        progress(len(steps), len(steps), "done")
    return report
