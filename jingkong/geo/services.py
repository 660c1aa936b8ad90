"""Writes to the base map: importing the region tree, validating it, refreshing aggregate counts."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import ProtectedError

from jingkong.access import audit
from jingkong.core import clock, events
from jingkong.core.exceptions import ValidationFailed
from jingkong.geo import rules
from jingkong.geo.models import LEVEL_ORDER, Building, Region

logger = logging.getLogger(__name__)

REGION_FIELDS = (
    "name", "level", "parent_id", "geometry", "geometry_simplified", "min_lon", "min_lat", "max_lon", "max_lat",
    "center_lon", "center_lat", "area_km2", "synthetic",
)


@dataclass
class RegionImportReport:
    """Outcome of :func:`regions_import_geojson`. ``problems`` are validation findings (never fatal)."""

    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ValidationReport:
    checked: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p["kind"]] = out.get(p["kind"], 0) + 1
        return out

    def as_dict(self) -> dict:
        return {"checked": self.checked, "ok": self.ok, "counts": self.counts(), "problems": self.problems}


def _read_source(source: str | Path | IO | dict) -> dict:
    if isinstance(source, dict):
        return source
    if isinstance(source, str | Path):
        with open(source, "rb") as fh:
            raw = fh.read()
    else:
        raw = source.read()
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                raw = raw.decode("gb18030")
            except UnicodeDecodeError:
                raise ValidationFailed("regions file is neither UTF-8 nor GB18030 text", code="bad_geojson") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"regions file is not valid JSON: {exc}", code="bad_geojson") from exc


def _features(collection: Any) -> list[dict]:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise ValidationFailed("regions must be a GeoJSON FeatureCollection", code="bad_geojson")
    features = collection.get("features")
    if not isinstance(features, list):
        raise ValidationFailed("the FeatureCollection has no 'features' list", code="bad_geojson")
    return features


def _as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "t")
    return bool(value)


@transaction.atomic
def regions_import_geojson(source, *, actor, replace: bool = False) -> RegionImportReport:
    """Upsert regions by code from a GeoJSON FeatureCollection (a path, a file object or the parsed dict).

    Features carry ``code, name, level, parent_code, synthetic``; they are processed parents first (sorted by level),
    so the file order does not matter. Re-importing the same file changes nothing (idempotent). With ``replace``,
    regions absent from the file are deleted (deepest first; ones still referenced by buildings, persons or users are
    kept and reported). Geometry problems are reported in the result, never raised.
    """
    features = _features(_read_source(source))
    report = RegionImportReport(total=len(features))
    rows: dict[str, dict] = {}
    for i, feature in enumerate(features):
        props = (feature or {}).get("properties") or {}
        code = str(props.get("code") or "").strip()
        level = str(props.get("level") or "").strip()
        if not code or level not in rules.LEVEL_DEPTH:
            report.skipped += 1
            report.problems.append(
                rules.Problem("unreadable_feature", code, f"feature #{i} needs a code and a level "
                              f"(one of {', '.join(rules.LEVELS)})").as_dict()
            )
            continue
        if code in rows:
            report.problems.append(rules.Problem("duplicate_code", code, f"code {code} appears twice; the last wins").as_dict())
        rows[code] = {
            "code": code,
            "name": str(props.get("name") or code)[:128],
            "level": level,
            "parent_code": str(props.get("parent_code") or "").strip() or None,
            "synthetic": _as_bool(props.get("synthetic", False)),
            "geometry": feature.get("geometry"),
        }

    existing = {r.code: r for r in Region.objects.all()}
    code_to_id = {code: r.pk for code, r in existing.items()}
    now = clock.now()
    ordered = sorted(rows.values(), key=lambda r: rules.LEVEL_DEPTH[r["level"]])
    for level in rules.LEVELS:
        to_create, to_update = [], []
        for row in (r for r in ordered if r["level"] == level):
            code = row["code"]
            current = existing.get(code)
            prepared = rules.prepare_geometry(row["geometry"], level) if row["geometry"] else None
            usable = prepared is not None
            if row["geometry"] and prepared is None:
                report.problems.append(rules.Problem(
                    "malformed_geometry", code, f"{code}: the geometry is not a readable GeoJSON polygon"
                    + ("; the stored polygon is kept" if current is not None and current.geometry else "")).as_dict())
            elif prepared is not None and not (-180 <= prepared.min_lon <= prepared.max_lon <= 180
                                               and -90 <= prepared.min_lat <= prepared.max_lat <= 90):
                usable = False
                report.problems.append(rules.Problem(
                    "coordinates_out_of_range", code, f"{code}: coordinates outside WGS-84 longitude/latitude"
                    + ("; the stored polygon is kept" if current is not None and current.geometry else "")).as_dict())
            values = {
                "name": row["name"],
                "level": level,
                "parent_id": code_to_id.get(row["parent_code"]) if row["parent_code"] else None,
                "geometry": row["geometry"] if usable else None,
                "geometry_simplified": prepared.simplified if usable else None,
                "synthetic": row["synthetic"],
            }
            for name in ("min_lon", "min_lat", "max_lon", "max_lat", "center_lon", "center_lat", "area_km2"):
                values[name] = getattr(prepared, name) if usable else None
            if row["parent_code"] and values["parent_id"] is None:
                report.problems.append(rules.Problem(
                    "unknown_parent", code, f"{code}: parent_code {row['parent_code']} is not a known region"
                    + ("; the stored parent is kept" if current is not None and current.parent_id else "")).as_dict())
            if current is not None:
                # An unusable value in the file never wipes what is stored (a bad re-import must not lose data).
                if not usable and current.geometry:
                    for name in ("geometry", "geometry_simplified", "min_lon", "min_lat", "max_lon", "max_lat",
                                 "center_lon", "center_lat", "area_km2"):
                        values[name] = getattr(current, name)
                if values["parent_id"] is None and row["parent_code"] and current.parent_id:
                    values["parent_id"] = current.parent_id
            if current is None:
                to_create.append(Region(code=row["code"], **values))
            elif any(getattr(current, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(current, k, v)
                to_update.append(current)
            else:
                report.unchanged += 1
        Region.objects.bulk_create(to_create, batch_size=500)
        Region.objects.bulk_update(to_update, list(REGION_FIELDS), batch_size=500)
        report.created += len(to_create)
        report.updated += len(to_update)
        if to_create:
            code_to_id.update(
                Region.objects.filter(code__in=[r.code for r in to_create]).values_list("code", "pk")
            )

    if replace:
        report.deleted = _delete_absent(set(rows), report)

    items = [rules.RegionItem(r["code"], r["level"], r["parent_code"], r["geometry"]) for r in ordered]
    # Parents that already exist in the database take part in the checks too (a street file under an existing district).
    for code in {r["parent_code"] for r in ordered if r["parent_code"] and r["parent_code"] not in rows}:
        parent = existing.get(code)
        if parent is not None:
            items.append(rules.RegionItem(parent.code, parent.level, parent.parent.code if parent.parent_id else None,
                                          parent.geometry))
    problems = rules.validate(items)
    # Only report problems about the imported regions; a parent in the database is context, not the subject.
    report.problems.extend(p.as_dict() for p in problems if p.code in rows)
    summary = {k: v for k, v in report.as_dict().items() if k != "problems"}
    summary["problem_count"] = len(report.problems)
    summary["problem_kinds"] = sorted({p["kind"] for p in report.problems})
    root = min(rows, key=len) if rows else ""
    events.emit("geo.regions_imported", subject_type="geo.region", region_code=root, actor=actor, payload=summary, at=now)
    audit.record(actor=actor, action="geo.regions_import", object_type="geo.region", object_id=root,
                 region_code=root, detail=summary)
    if report.problems:
        logger.warning("regions import: %d problem(s): %s", len(report.problems), summary["problem_kinds"])
    return report


def _delete_absent(keep: set[str], report: RegionImportReport) -> int:
    deleted = 0
    for level in reversed(rules.LEVELS):
        for region in Region.objects.filter(level=level).exclude(code__in=keep).order_by("code"):
            try:
                with transaction.atomic():
                    region.delete()
                deleted += 1
            except ProtectedError:
                report.problems.append(
                    rules.Problem("kept_in_use", region.code,
                                  f"{region.code} is not in the file but is still referenced; kept").as_dict()
                )
    return deleted


def region_items(root_code: str | None = None) -> list[rules.RegionItem]:
    qs = Region.objects.all()
    if root_code:
        qs = qs.filter(code__startswith=root_code)
    return [
        rules.RegionItem(code, level, parent_code, geometry)
        for code, level, parent_code, geometry in qs.values_list("code", "level", "parent__code", "geometry")
    ]


@transaction.atomic
def regions_validate(*, actor=None, root_code: str | None = None) -> ValidationReport:
    """Check the stored region tree (see :func:`jingkong.geo.rules.validate`); report, log and record the findings."""
    items = region_items(root_code)
    report = ValidationReport(checked=len(items), problems=[p.as_dict() for p in rules.validate(items)])
    payload = {"checked": report.checked, "counts": report.counts(), "problems": report.problems[:200]}
    events.emit("geo.regions_validated", subject_type="geo.region", region_code=root_code or "", actor=actor,
                payload=payload)
    if report.problems:
        logger.warning("region validation: %d problem(s) %s", len(report.problems), report.counts())
    return report


@transaction.atomic
def region_counts_refresh(*, actor=None, now=None) -> dict:
    """Set population, households and buildings on every region with set-based SQL.

    Direct counts are aggregated per region (persons, households and buildings point at their grid), then rolled up
    the tree one level at a time (grid → community → street → district) with one ``UPDATE … FROM`` per level.
    """
    from jingkong.people.models import Household, Person

    now = now or clock.now()
    qn = connection.ops.quote_name
    region = qn(Region._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {region} SET population = 0, households = 0, buildings = 0, counts_updated_at = %s", [now])
        for column, model in (("population", Person), ("households", Household), ("buildings", Building)):
            table = qn(model._meta.db_table)
            cur.execute(
                f"UPDATE {region} SET {column} = agg.n "
                f"FROM (SELECT grid_id, COUNT(*) AS n FROM {table} WHERE grid_id IS NOT NULL GROUP BY grid_id) AS agg "
                f"WHERE {region}.id = agg.grid_id"
            )
        for level in reversed(LEVEL_ORDER[1:]):
            cur.execute(
                f"UPDATE {region} SET population = {region}.population + agg.p, "
                f"households = {region}.households + agg.h, buildings = {region}.buildings + agg.b "
                f"FROM (SELECT parent_id, SUM(population) AS p, SUM(households) AS h, SUM(buildings) AS b "
                f"FROM {region} WHERE level = %s AND parent_id IS NOT NULL GROUP BY parent_id) AS agg "
                f"WHERE {region}.id = agg.parent_id",
                [level.value],
            )
    totals = {
        "regions": Region.objects.count(),
        "population": sum(Region.objects.filter(parent__isnull=True).values_list("population", flat=True)),
    }
    events.emit("geo.counts_refreshed", subject_type="geo.region", actor=actor, payload=totals, at=now)
    return totals


def regions_export_geojson(level: str | None = None, root_code: str | None = None, *, simplified: bool = False) -> dict:
    """The region tree (or the subtree under ``root_code``, or one level) as a FeatureCollection that
    :func:`regions_import_geojson` reads back unchanged. Parents come before children."""
    qs = Region.objects.select_related("parent").all()
    if root_code:
        qs = qs.filter(code__startswith=root_code)
    if level:
        qs = qs.filter(level=level)
    rows = sorted(qs, key=lambda r: (rules.LEVEL_DEPTH.get(r.level, 9), r.code))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.code,
                "geometry": (r.geometry_simplified if simplified else None) or r.geometry,
                "properties": {
                    "code": r.code,
                    "name": r.name,
                    "level": r.level,
                    "parent_code": r.parent.code if r.parent_id else None,
                    "synthetic": r.synthetic,
                },
            }
            for r in rows
        ],
    }
