"""Mapping points to grids in bulk (which grid does each building, venue or scan location fall in?).

:class:`GridLocator` is pure (numpy + shapely): build it from codes and GeoJSON geometries, then
``locate(lon, lat)`` answers, for arrays of WGS-84 coordinates, the index of the containing grid or ``-1`` for points
outside every grid (the caller reports those). Points on a border shared by two grids go to the grid listed first, so
results are deterministic. :func:`grid_locator_from_db` builds one from the stored grids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from jingkong.geo.rules import to_shape

OUTSIDE = -1


class GridLocator:
    def __init__(self, codes: Sequence[str], geometries: Sequence):
        """``geometries``: GeoJSON dicts or shapely geometries, aligned with ``codes``; empty ones are skipped."""
        keep_codes, shapes = [], []
        for code, geom in zip(codes, geometries, strict=True):
            shp = to_shape(geom) if isinstance(geom, dict) or geom is None else geom
            if shp is None or shp.is_empty:
                continue
            if not shp.is_valid:
                shp = shapely.make_valid(shp)
            keep_codes.append(code)
            shapes.append(shp)
        self.codes = np.array(keep_codes, dtype=object)
        self.geometries = np.array(shapes, dtype=object)
        shapely.prepare(self.geometries)
        self.tree = shapely.STRtree(self.geometries)

    def __len__(self) -> int:
        return len(self.codes)

    def locate(self, lon, lat, *, chunk: int = 500_000) -> np.ndarray:
        """Index into :attr:`codes` of the grid containing each point (border points included), or ``-1``."""
        lon = np.asarray(lon, dtype="float64")
        lat = np.asarray(lat, dtype="float64")
        if lon.shape != lat.shape:
            raise ValueError("lon and lat must have the same shape")
        out = np.full(lon.shape[0], OUTSIDE, dtype=np.int64)
        if len(self.codes) == 0:
            return out
        for start in range(0, lon.shape[0], chunk):
            stop = min(start + chunk, lon.shape[0])
            points = shapely.points(lon[start:stop], lat[start:stop])
            point_idx, grid_idx = self.tree.query(points, predicate="intersects")
            if point_idx.size == 0:
                continue
            # Several hits only on shared borders: keep the lowest grid index (deterministic).
            order = np.lexsort((grid_idx, point_idx))
            point_idx, grid_idx = point_idx[order], grid_idx[order]
            first = np.ones(point_idx.shape[0], dtype=bool)
            first[1:] = point_idx[1:] != point_idx[:-1]
            out[start + point_idx[first]] = grid_idx[first]
        return out

    def codes_for(self, lon, lat) -> np.ndarray:
        """Grid code per point, ``''`` outside every grid."""
        idx = self.locate(lon, lat)
        result = np.full(idx.shape[0], "", dtype=object)
        inside = idx >= 0
        result[inside] = self.codes[idx[inside]]
        return result


def grid_locator_from_db(root_code: str | None = None) -> GridLocator:
    """A locator over the stored grids (optionally only those under ``root_code``), ordered by code."""
    from jingkong.geo.models import Level, Region

    qs = Region.objects.filter(level=Level.GRID, geometry__isnull=False).order_by("code")
    if root_code:
        qs = qs.filter(code__startswith=root_code)
    rows = list(qs.values_list("code", "geometry"))
    return GridLocator([c for c, _ in rows], [g for _, g in rows])
