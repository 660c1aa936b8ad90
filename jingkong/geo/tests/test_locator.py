from __future__ import annotations

import numpy as np
import pytest

from jingkong.geo.locator import OUTSIDE, GridLocator, grid_locator_from_db
from jingkong.geo.tests.factories import square


def _locator():
    # 3 x 2 grid of 0.01° squares, plus one MultiPolygon grid made of two separate squares
    codes, geoms = [], []
    for row in range(2):
        for col in range(3):
            codes.append(f"G{row}{col}")
            geoms.append(square(121.80 + col * 0.01, 29.90 + row * 0.01, 0.01))
    codes.append("GM")
    geoms.append({"type": "MultiPolygon", "coordinates": [square(122.0, 30.0, 0.01)["coordinates"],
                                                          square(122.1, 30.0, 0.01)["coordinates"]]})
    codes.append("EMPTY")
    geoms.append(None)
    return GridLocator(codes, geoms)


def test_locator_maps_known_points_and_minus_one_outside():
    loc = _locator()
    assert len(loc) == 7  # the grid without a polygon is skipped
    lon = np.array([121.805, 121.825, 121.815, 122.005, 122.105, 121.70, 122.05, 121.83])
    lat = np.array([29.905, 29.915, 29.915, 30.005, 30.005, 29.90, 30.005, 29.93])
    assert loc.codes_for(lon, lat).tolist() == ["G00", "G12", "G11", "GM", "GM", "", "", ""]
    idx = loc.locate(lon, lat)
    assert idx[-3:].tolist() == [OUTSIDE] * 3


def test_border_points_go_to_the_first_grid_deterministically():
    loc = _locator()
    # on the shared edge of G00 and G01, and the corner shared by 4 grids
    codes = loc.codes_for([121.81, 121.81], [29.905, 29.91]).tolist()
    assert codes == ["G00", "G00"]


def test_locator_handles_chunks_and_empty_input():
    loc = _locator()
    rng = np.random.default_rng(1)
    lon = rng.uniform(121.80, 121.83, 10_000)
    lat = rng.uniform(29.90, 29.92, 10_000)
    whole = loc.locate(lon, lat)
    assert (whole >= 0).all()
    assert np.array_equal(whole, loc.locate(lon, lat, chunk=777))
    # compare with a direct point-in-polygon test
    col = np.floor((lon - 121.80) / 0.01).astype(int)
    row = np.floor((lat - 29.90) / 0.01).astype(int)
    assert np.array_equal(whole, row * 3 + col)
    assert loc.locate(np.array([]), np.array([])).shape == (0,)


@pytest.mark.django_db
def test_locator_from_db(regions):
    loc = grid_locator_from_db()
    assert loc.codes_for([121.805, 121.825, 121.5], [29.905, 29.905, 29.9]).tolist() == [
        regions["grid_a1"].code, regions["grid_b1"].code, ""]
    only_b = grid_locator_from_db(regions["street_b"].code)
    assert only_b.codes_for([121.805], [29.905]).tolist() == [""]
