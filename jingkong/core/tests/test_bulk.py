from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from jingkong.core import bulk

pytestmark = pytest.mark.django_db


def _indexes(table: str) -> set[str]:
    with connection.cursor() as c:
        return {name for name, info in connection.introspection.get_constraints(c, table).items()
                if info["index"] or info["unique"]}


def test_load_into_empty_rebuilds_indexes_keeps_uniqueness_and_declines_a_filled_table(regions):
    from jingkong.geo.models import Building
    from jingkong.people.models import Household

    b = Building.objects.create(code="B1", grid=regions["grid_a1"], lon=121.805, lat=29.905)
    cols = ["code", "building_id", "grid_id", "unit", "room"]
    before = _indexes("people_household")
    rows = [(f"H{i}", b.pk, b.grid_id, "1", str(100 + i)) for i in range(50)]
    assert bulk.load_into_empty("people_household", cols, rows) is True
    assert Household.objects.count() == 50 and _indexes("people_household") == before
    with pytest.raises(IntegrityError), transaction.atomic():
        Household.objects.create(code="H1", building=b, grid_id=b.grid_id)
    assert bulk.load_into_empty("people_household", cols, [("H99", b.pk, b.grid_id, "", "")]) is False
    assert Household.objects.count() == 50


def test_load_into_empty_rolls_back_entirely_on_a_bad_row(regions):
    from jingkong.geo.models import Building
    from jingkong.people.models import Household

    b = Building.objects.create(code="B1", grid=regions["grid_a1"], lon=121.805, lat=29.905)
    cols = ["code", "building_id", "grid_id", "unit", "room"]
    rows = [("H1", b.pk, b.grid_id, "", ""), ("H2", 999_999, b.grid_id, "", "")]  # H2: no such building
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            bulk.load_into_empty("people_household", cols, rows)
            # SQLite checks deferred foreign keys at commit; make the check explicit inside the block
            connection.check_constraints(table_names=["people_household"])
    assert Household.objects.count() == 0 and _indexes("people_household")
