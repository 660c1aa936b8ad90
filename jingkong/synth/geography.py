"""The synthetic base map: real Beilun streets, communities placed inside them, grids, buildings.

* Streets: the real polygons of jingkong/data/beilun/streets.geojson (repaired with make_valid).
* 保税区 (330206401) has no public polygon; it lies inside 新碶. We give it a ~2.3 km² square (its official area) around
  (121.862, 29.925) clipped to 新碶, and remove that square from 新碶 so streets do not overlap. Both are marked synthetic
  only for 保税区; 新碶 keeps ``synthetic: false`` (its real outline minus the carved zone). 保税区 has no communities in
  the division list, so it gets one synthetic community 330206401001 保税区社区.
* Communities: a Voronoi partition of their street around seeded points (two Lloyd iterations), clipped to the street.
* Grids: the same inside each community; each holds 300–500 households at full scale (see allocate_grid_households).
* Buildings: points inside their grid; high-rises in urban communities (社区/居委会), low village houses in 村.

Coordinates are snapped to 1e-6 degrees (~0.1 m) so what is written is exactly what was tested for containment.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box, shape

from jingkong.synth import data

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "beilun"
DISTRICT_CODE = "330206"
BONDED_CODE = "330206401"
BONDED_HOST = "330206002"  # 新碶
BONDED_CENTER = (121.862, 29.925)
BONDED_HALF = (0.0078, 0.0068)  # ≈ 1.5 km × 1.5 km
PRECISION = 1e-6
GRID_BAND = (300, 500)


@dataclass
class Region:
    code: str
    name: str
    level: str
    parent_code: str
    geometry: object
    synthetic: bool


@dataclass
class Geography:
    district: Region
    streets: list[Region]
    communities: list[Region]
    grids: list[Region]
    community_street: np.ndarray  # index into streets
    community_urban: np.ndarray  # bool
    grid_community: np.ndarray  # index into communities
    grid_households: np.ndarray  # households to place in each grid
    band: tuple[float, float]
    # buildings
    b_grid: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    b_seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    b_units: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    b_floors: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    b_per_floor: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    b_households: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    b_lon: np.ndarray = field(default_factory=lambda: np.empty(0))
    b_lat: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def grid_street(self) -> np.ndarray:
        return self.community_street[self.grid_community]

    def regions(self) -> list[Region]:
        """All regions, parents before children."""
        return [self.district, *self.streets, *self.communities, *self.grids]


def snap(geom):
    """Snap to the 1e-6° grid and round coordinates, so the file holds exactly the tested geometry."""
    geom = shapely.set_precision(geom, PRECISION)
    return shapely.transform(geom, lambda c: np.round(c, 6))


def _polygonal(geom):
    geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts)


def load_beilun(data_dir: Path = DATA_DIR) -> tuple[Region, list[Region], list[tuple[str, str, str]]]:
    """The district, its 12 street-level units (保税区 carved from 新碶) and the (code, name, street) communities."""
    divisions = list(csv.DictReader((data_dir / "divisions.csv").open(encoding="utf-8")))
    district_row = next(r for r in divisions if r["level"] == "district")
    district_geom = shape(json.loads((data_dir / "district.geojson").read_text(encoding="utf-8"))["features"][0]["geometry"])
    polys = {}
    for feature in json.loads((data_dir / "streets.geojson").read_text(encoding="utf-8"))["features"]:
        polys[feature["properties"]["code"]] = _polygonal(shape(feature["geometry"]))
    cx, cy = BONDED_CENTER
    square = box(cx - BONDED_HALF[0], cy - BONDED_HALF[1], cx + BONDED_HALF[0], cy + BONDED_HALF[1])
    polys[BONDED_CODE] = polys[BONDED_HOST].intersection(square)
    polys[BONDED_HOST] = polys[BONDED_HOST].difference(square)
    streets = [
        Region(r["code"], r["name"], "street", r["parent_code"], snap(polys[r["code"]]), r["code"] == BONDED_CODE)
        for r in divisions
        if r["level"] == "street"
    ]
    communities = [(r["code"], r["name"], r["parent_code"]) for r in divisions if r["level"] == "community"]
    if not any(c[2] == BONDED_CODE for c in communities):
        communities.append((BONDED_CODE + "001", "保税区社区", BONDED_CODE))
    district = Region(district_row["code"], district_row["name"], "district", "", snap(_polygonal(district_geom)), False)
    return district, streets, communities


def sample_points(geom, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points drawn uniformly inside ``geom``, rounded to 6 decimals, each verified inside after rounding."""
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    fill = max(geom.area / max((maxx - minx) * (maxy - miny), 1e-18), 0.01)
    xs, ys, have = [], [], 0
    while have < n:
        m = int((n - have) / fill * 1.3) + 16
        x = np.round(rng.uniform(minx, maxx, m), 6)
        y = np.round(rng.uniform(miny, maxy, m), 6)
        inside = shapely.contains_xy(geom, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        have += int(inside.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def partition(geom, n: int, rng: np.random.Generator, lloyd: int = 2) -> list:
    """Split ``geom`` into ``n`` non-empty cells: Voronoi around seeded points, relaxed, clipped, snapped."""
    if n <= 1:
        return [geom]
    for _attempt in range(8):
        x, y = sample_points(geom, n, rng)
        seeds = shapely.points(x, y)
        envelope = geom.envelope.buffer(0.05)
        for it in range(lloyd + 1):
            cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope, ordered=True))
            cells = shapely.intersection(cells, geom)
            if it == lloyd:
                break
            centroids = shapely.centroid(cells)
            ok = shapely.contains(geom, centroids) & ~shapely.is_empty(centroids)
            seeds = np.where(ok, centroids, seeds)
            # keep seeds distinct so the diagram keeps one cell per seed
            coords = np.round(shapely.get_coordinates(seeds), 7)
            if len(np.unique(coords, axis=0)) < n:
                seeds = shapely.points(x, y)
                cells = shapely.intersection(
                    shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=envelope, ordered=True)),
                    geom,
                )
                break
        cells = [snap(c) for c in cells]
        if len(cells) == n and all((not c.is_empty) and c.area > 0 for c in cells):
            return cells
    raise RuntimeError("could not partition a region into non-empty cells")


def allocate_grid_households(
    total_households: int, community_weights: np.ndarray, rng: np.random.Generator, band: tuple[int, int] = GRID_BAND
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Grids per community and households per grid.

    At full scale every grid holds ``band`` (300–500) households. When the population is too small for every community
    to have a grid of that size (below ~250 k people for Beilun's 230 communities), each community still gets at least
    one grid and the band is scaled down proportionally; the band actually used is returned.
    """
    lo, hi = band
    mid = (lo + hi) / 2
    w = np.asarray(community_weights, dtype=float)
    target = total_households * w / w.sum()
    scale = min(1.0, total_households / (len(w) * mid))
    n_grids = np.maximum(1, np.round(target / (mid * scale))).astype(np.int64)
    mean = total_households / n_grids.sum()
    if scale < 1.0:
        lo_s, hi_s = mean * lo / mid, mean * hi / mid
    else:
        lo_s, hi_s = float(lo), float(hi)
        mean = min(max(mean, lo_s), hi_s)
    half = min(mean - lo_s, hi_s - mean, 0.3 * (hi_s - lo_s))
    households = np.round(rng.uniform(mean - half, mean + half, int(n_grids.sum()))).astype(np.int64)
    households = np.clip(households, max(1, int(np.ceil(lo_s))), max(1, int(np.floor(hi_s))))
    return n_grids, households, (lo_s, hi_s)


def place_name(name: str) -> str:
    """The everyday name of a community: 沿海村委会 → 沿海村, 海湾居委会 → 海湾社区."""
    if name.endswith("村委会"):
        return name.removesuffix("委会")
    if name.endswith("居委会"):
        return name.removesuffix("居委会") + "社区"
    return name


def is_urban(name: str, street_code: str) -> bool:
    if "村" in name:
        return False
    return "社区" in name or "居委会" in name or street_code in data.URBAN_STREETS


def build_geography(population: int, rng: np.random.Generator, mean_household_size: float) -> Geography:
    """Streets, communities, grids with household targets (no buildings yet)."""
    district, streets, comm_rows = load_beilun()
    street_index = {s.code: i for i, s in enumerate(streets)}
    community_street = np.array([street_index[c[2]] for c in comm_rows], dtype=np.int64)
    urban = np.array([is_urban(c[1], c[2]) for c in comm_rows])
    communities: list[Region] = []
    for si, street in enumerate(streets):
        members = np.flatnonzero(community_street == si)
        cells = partition(street.geometry, len(members), rng)
        for ci, cell in zip(members, cells, strict=True):
            code, name, parent = comm_rows[ci]
            communities.append(Region(code, name, "community", parent, cell, True))
    # communities were appended street by street: reorder to the division-list order
    order = {c.code: c for c in communities}
    communities = [order[c[0]] for c in comm_rows]

    street_w = np.array([data.STREET_WEIGHTS.get(s.code, 0.02) for s in streets])
    comm_w = np.where(urban, 3.0, 1.0) * rng.lognormal(0.0, 0.35, len(comm_rows))
    for si in range(len(streets)):
        members = community_street == si
        comm_w[members] = comm_w[members] / comm_w[members].sum() * street_w[si]
    total_households = max(len(comm_rows), round(population / mean_household_size))
    n_grids, grid_households, band = allocate_grid_households(total_households, comm_w, rng)

    grids: list[Region] = []
    grid_community = np.repeat(np.arange(len(communities)), n_grids)
    for ci, community in enumerate(communities):
        for k, cell in enumerate(partition(community.geometry, int(n_grids[ci]), rng), start=1):
            grids.append(Region(f"{community.code}{k:03d}", f"第{k}网格", "grid", community.code, cell, True))
    return Geography(district, streets, communities, grids, community_street, urban, grid_community, grid_households, band)


def _draw_buildings(urban: bool, n: int, rng: np.random.Generator):
    if urban:
        floors = rng.choice([6, 7, 11, 18, 26, 33], n, p=[0.25, 0.1, 0.2, 0.25, 0.12, 0.08])
        units = np.where(floors <= 7, rng.integers(2, 5, n), rng.integers(1, 4, n))
        per_floor = np.where(floors >= 26, rng.choice([2, 4], n), 2)
        occupancy = rng.uniform(0.65, 0.95, n)
    else:
        floors = rng.choice([1, 2, 3, 4], n, p=[0.1, 0.4, 0.4, 0.1])
        units = np.ones(n, dtype=np.int64)
        per_floor = rng.choice([1, 2], n, p=[0.7, 0.3])
        occupancy = rng.uniform(0.4, 1.0, n)
    capacity = floors * units * per_floor
    households = np.clip(np.round(capacity * occupancy), 1, capacity).astype(np.int64)
    return units, floors, per_floor, households


def place_buildings(geo: Geography, rng: np.random.Generator) -> None:
    """Fill each grid with buildings until its households fit; points uniform inside the grid polygon."""
    grid_urban = geo.community_urban[geo.grid_community]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("grid", "seq", "units", "floors", "per_floor", "hh", "lon", "lat")}
    for g, grid in enumerate(geo.grids):
        need = int(geo.grid_households[g])
        parts = [], [], [], []
        have = 0
        while have < need:
            u, f, p, h = _draw_buildings(bool(grid_urban[g]), max(8, need // (30 if grid_urban[g] else 2)), rng)
            for lst, arr in zip(parts, (u, f, p, h), strict=True):
                lst.append(arr)
            have += int(h.sum())
        units, floors, per_floor, hh = (np.concatenate(x) for x in parts)
        cum = np.cumsum(hh)
        count = int(np.searchsorted(cum, need) + 1)
        hh = hh[:count].copy()
        hh[-1] -= int(cum[count - 1] - need)
        lon, lat = sample_points(grid.geometry, count, rng)
        cols["grid"].append(np.full(count, g, dtype=np.int32))
        cols["seq"].append(np.arange(1, count + 1, dtype=np.int32))
        cols["units"].append(units[:count])
        cols["floors"].append(floors[:count])
        cols["per_floor"].append(per_floor[:count])
        cols["hh"].append(hh)
        cols["lon"].append(lon)
        cols["lat"].append(lat)
    geo.b_grid = np.concatenate(cols["grid"])
    geo.b_seq = np.concatenate(cols["seq"])
    geo.b_units = np.concatenate(cols["units"]).astype(np.int32)
    geo.b_floors = np.concatenate(cols["floors"]).astype(np.int32)
    geo.b_per_floor = np.concatenate(cols["per_floor"]).astype(np.int32)
    geo.b_households = np.concatenate(cols["hh"]).astype(np.int32)
    geo.b_lon = np.concatenate(cols["lon"])
    geo.b_lat = np.concatenate(cols["lat"])
