"""Venues with a 场所码 (venue code) and who works or studies where.

Everyday venues (supermarkets, wet markets, restaurants, pharmacies, gyms, hotels) are placed in every grid; clinics per
community; schools, a government office and stations per street; key-industry workplaces (port terminals in 大榭/梅山/
北仑港/穿山, cold-chain warehouses in 保税区/大榭/梅山, hospitals) at fixed streets; factories in the industrial
streets, including the demo scenario's garment factory in 沿海村, 新碶街道. Venue codes are ``<grid code>V<nnn>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from jingkong.synth import data
from jingkong.synth.geography import Geography, place_name, sample_points
from jingkong.synth.population import People

LOCAL_TYPES = ("supermarket", "wet_market", "restaurant", "pharmacy", "clinic", "gym", "hotel")
GARMENT_COMMUNITY = "330206002211"  # 沿海村委会, 新碶街道
SCHOOL_KINDS = (("幼儿园", 3, 6, 3000), ("小学", 6, 12, 6000), ("中学", 12, 18, 12000))


@dataclass
class Venues:
    code: list[str]
    name: list[str]
    type: list[str]
    grid: np.ndarray
    building: np.ndarray  # -1: none
    lon: np.ndarray
    lat: np.ndarray
    employer: list[str]
    local_candidates: np.ndarray  # (n_grids, K) nearby everyday venues, nearest first
    school_of_grid: np.ndarray  # (n_grids, 3) nearest kindergarten / primary / middle school, -1 if none
    garment_factory: int
    key_sites: dict[str, np.ndarray]  # industry → workplace venues
    workplaces: np.ndarray  # factories and offices; [0] is the garment factory

    def __len__(self) -> int:
        return len(self.code)


class _Builder:
    def __init__(self, geo: Geography, rng: np.random.Generator):
        self.geo, self.rng = geo, rng
        self.next_seq = np.zeros(len(geo.grids), np.int64)
        self.rows: list[tuple] = []
        grid_start = np.searchsorted(geo.b_grid, np.arange(len(geo.grids) + 1))
        self.grid_buildings = grid_start

    def add(self, grid: int, type_: str, name: str, employer: str = "", at_building: bool = True) -> int:
        self.next_seq[grid] += 1
        code = f"{self.geo.grids[grid].code}V{self.next_seq[grid]:03d}"
        lo, hi = self.grid_buildings[grid], self.grid_buildings[grid + 1]
        if at_building and hi > lo:
            b = int(self.rng.integers(lo, hi))
            lon, lat = self.geo.b_lon[b], self.geo.b_lat[b]
        else:
            b = -1
            x, y = sample_points(self.geo.grids[grid].geometry, 1, self.rng)
            lon, lat = float(x[0]), float(y[0])
        self.rows.append((code, name, type_, grid, b, lon, lat, employer))
        return len(self.rows) - 1


def build_venues(geo: Geography, people: People, rng: np.random.Generator) -> Venues:
    vb = _Builder(geo, rng)
    grid_urban = geo.community_urban[geo.grid_community]
    grid_street = geo.grid_street
    pick = lambda seq: seq[int(rng.integers(0, len(seq)))]  # noqa: E731

    for g, grid in enumerate(geo.grids):
        community = geo.communities[geo.grid_community[g]]
        short = community.name.removesuffix("村委会").removesuffix("居委会").removesuffix("社区").removesuffix("村")
        urban = bool(grid_urban[g])
        for _ in range(1 + int(urban and rng.random() < 0.3)):
            vb.add(g, "supermarket", f"{pick(data.SUPERMARKET_BRANDS)}({short}{grid.name}店)")
        if rng.random() < 0.35:
            vb.add(g, "wet_market", f"{short}农贸市场" if rng.random() < 0.7 else f"{short}菜场")
        for _ in range(int(rng.integers(3, 7)) if urban else int(rng.integers(1, 3))):
            vb.add(g, "restaurant", f"{pick(data.RESTAURANTS)}({short}店)")
        if urban or rng.random() < 0.4:
            vb.add(g, "pharmacy", f"{pick(data.PHARMACIES)}({short}店)")
        if urban and rng.random() < 0.3:
            vb.add(g, "gym", f"{short}健身中心")
        if urban and rng.random() < 0.15:
            vb.add(g, "hotel", f"{short}快捷酒店")
    for ci, community in enumerate(geo.communities):
        grids = np.flatnonzero(geo.grid_community == ci)
        vb.add(int(grids[0]), "clinic", f"{place_name(community.name)}卫生服务站")

    grid_people = np.bincount(np.repeat(geo.b_grid, geo.b_households), minlength=len(geo.grids)) * 2.6
    schools: list[tuple[int, int]] = []  # (venue index, kind)
    for si, street in enumerate(geo.streets):
        grids = np.flatnonzero(grid_street == si)
        vb.add(int(pick(grids)), "government", f"{street.name}办事处")
        vb.add(int(pick(grids)), "clinic", f"{street.name}社区卫生服务中心")
        if street.code != "330206401":
            vb.add(int(pick(grids)), "station", f"{street.name.removesuffix('街道')}公交首末站")
            people_here = grid_people[grids].sum()
            for kind, (label, *_rest, per) in enumerate(SCHOOL_KINDS):
                for k in range(max(1, round(people_here / per))):
                    prefix = street.name.removesuffix("街道")
                    name = f"{prefix}第{k + 1}{label}" if label != "幼儿园" else f"{prefix}{k + 1}号幼儿园"
                    schools.append((vb.add(int(pick(grids)), "school", name, employer=name), kind))

    # key-industry workplaces at their streets
    street_of = {s.code: i for i, s in enumerate(geo.streets)}
    key_sites: dict[str, list[int]] = {}
    for industry, type_, street_code, name in data.KEY_WORKPLACES:
        grids = np.flatnonzero(grid_street == street_of[street_code])
        employer = name if industry == "hospital" else (
            f"{name}有限公司" if type_ == "port_terminal" and industry == "port" else
            f"北仑{pick(data.FACTORY_WORDS)}{pick(data.FACTORY_WORDS)}物流运输有限公司" if industry == "transport" else
            f"宁波{pick(data.FACTORY_WORDS)}{pick(data.FACTORY_WORDS)}海运有限公司" if industry == "ship_crew" else
            f"{name}运营有限公司"
        )
        key_sites.setdefault(industry, []).append(vb.add(int(pick(grids)), type_, name, employer, at_building=False))

    # factories and offices for everyone else who works
    other_workers = int((people.employed & (people.industry == 0)).sum())
    garment_grid = int(np.flatnonzero(geo.grid_community == [c.code for c in geo.communities].index(GARMENT_COMMUNITY))[0])
    garment = vb.add(garment_grid, "factory", data.GARMENT_FACTORY_NAME, data.GARMENT_FACTORY_NAME, at_building=False)
    industrial = np.array([geo.streets[s].code in data.INDUSTRIAL_STREETS for s in range(len(geo.streets))])
    ind_grids = np.flatnonzero(industrial[grid_street] & ~grid_urban)
    if len(ind_grids) == 0:
        ind_grids = np.arange(len(geo.grids))
    all_grids = np.arange(len(geo.grids))
    workplaces = [garment]
    for _ in range(max(3, other_workers // 250)):
        name = f"宁波{pick(data.FACTORY_WORDS)}{pick(data.FACTORY_WORDS)}{pick(data.FACTORY_TRADES)}有限公司"
        workplaces.append(vb.add(int(pick(ind_grids)), "factory", name, name, at_building=False))
    for _ in range(max(2, other_workers // 800)):
        name = f"宁波{pick(data.FACTORY_WORDS)}{pick(data.FACTORY_WORDS)}{pick(data.OFFICE_TRADES)}有限公司"
        workplaces.append(vb.add(int(pick(all_grids)), "office", name, name))

    code, name, type_, grid, building, lon, lat, employer = (list(x) for x in zip(*vb.rows, strict=True))
    venues = Venues(code, name, type_, np.array(grid, np.int64), np.array(building, np.int64), np.array(lon),
                    np.array(lat), employer, np.empty((0, 0), np.int64), np.empty((0, 3), np.int64), garment,
                    {k: np.array(v, np.int64) for k, v in key_sites.items()}, np.array(workplaces, np.int64))
    centroids = shapely.get_coordinates(shapely.point_on_surface([g.geometry for g in geo.grids]))
    types = np.array(type_)
    local = np.flatnonzero(np.isin(types, LOCAL_TYPES))
    venues.local_candidates = _nearest(centroids, venues.lon[local], venues.lat[local], local, k=min(24, len(local)))
    venues.school_of_grid = np.full((len(geo.grids), 3), -1, np.int64)
    for kind in range(3):
        idx = np.array([v for v, k in schools if k == kind], np.int64)
        if len(idx):
            venues.school_of_grid[:, kind] = _nearest(centroids, venues.lon[idx], venues.lat[idx], idx, k=1)[:, 0]
    return venues


def _nearest(points: np.ndarray, lon: np.ndarray, lat: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """For each point, the ``k`` nearest of the given venues (ids), nearest first.

    Points are grouped into square tiles; each tile looks only at the venues inside its bounding box widened by a
    margin, and a point's answer is accepted when its k-th distance is within the margin (so it is exact); the margin
    doubles for the points that are not yet answered. Linear in points × nearby venues instead of points × venues.
    """
    coslat = np.cos(np.radians(29.9))
    px, py = points[:, 0] * coslat, points[:, 1]
    vx, vy = lon * coslat, lat
    out = np.empty((len(points), k), np.int64)
    if len(points) == 0:
        return out
    side = max(1, int(np.sqrt(len(points) / 64)))
    x0, y0 = px.min(), py.min()
    width = max(px.max() - x0, py.max() - y0, 1e-9)
    tile = np.minimum((px - x0) / width * side, side - 1).astype(np.int64) * side + np.minimum(
        (py - y0) / width * side, side - 1
    ).astype(np.int64)
    area = max((vx.max() - vx.min()) * (vy.max() - vy.min()), 1e-12)
    margin0 = 2 * np.sqrt(area * k / len(vx) / np.pi)
    for t in np.unique(tile):
        q = np.flatnonzero(tile == t)
        margin = margin0
        while len(q):
            bx0, bx1 = px[q].min() - margin, px[q].max() + margin
            by0, by1 = py[q].min() - margin, py[q].max() + margin
            cand = np.flatnonzero((vx >= bx0) & (vx <= bx1) & (vy >= by0) & (vy <= by1))
            margin *= 2
            if len(cand) < k:
                continue
            d = (px[q, None] - vx[None, cand]) ** 2 + (py[q, None] - vy[None, cand]) ** 2
            # a full stable sort (the candidates are few): ties (venues in one building) go to the lower venue index
            nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
            if len(cand) == len(vx):
                ok = np.ones(len(q), bool)
            else:
                edge = np.minimum.reduce([px[q] - bx0, bx1 - px[q], py[q] - by0, by1 - py[q]])
                ok = np.take_along_axis(d, nearest[:, -1:], axis=1)[:, 0] < edge**2
            out[q[ok]] = ids[cand[nearest[ok]]]
            q = q[~ok]
    return out


def assign_workplaces(geo: Geography, people: People, hh_grid: np.ndarray, venues: Venues, rng: np.random.Generator):
    """The workplace venue of every employed person (-1 otherwise) and the school venue of every pupil (-1 otherwise)."""
    n = len(people)
    work = np.full(n, -1, np.int64)
    for code, sites in venues.key_sites.items():
        sel = np.flatnonzero(people.industry == data.INDUSTRY_CODES.index(code))
        work[sel] = sites[rng.integers(0, len(sites), len(sel))]
    others = np.flatnonzero(people.employed & (people.industry == 0))
    places = venues.workplaces
    person_street = geo.grid_street[hh_grid[people.household[others]]]
    place_street = geo.grid_street[venues.grid[places]]
    # the garment factory employs ~0.35 % of residents, mostly from 新碶; others work in their street with p = 0.65
    garment_street = place_street[0]
    garment_p = np.where(person_street == garment_street, 0.02, 0.002)
    choice = places[1:][rng.integers(0, len(places) - 1, len(others))]
    local_pick = rng.random(len(others)) < 0.65
    for s in np.unique(person_street):
        here = places[1:][place_street[1:] == s]
        sel = local_pick & (person_street == s)
        if len(here):
            choice[sel] = here[rng.integers(0, len(here), int(sel.sum()))]
    choice = np.where(rng.random(len(others)) < garment_p, places[0], choice)
    work[others] = choice
    school = np.full(n, -1, np.int64)
    for kind, (_label, lo, hi, _per) in enumerate(SCHOOL_KINDS):
        sel = np.flatnonzero((people.age >= lo) & (people.age < hi))
        school[sel] = venues.school_of_grid[hh_grid[people.household[sel]], kind]
    return work, school
