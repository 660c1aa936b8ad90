"""Supplies (物资保障): stock never negative, transfers as pairs, idempotent movements, low-stock alerts, consumption
per day, stock-count files, scope."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.access.guard import Scope
from jingkong.command import supplies
from jingkong.command.models import Depot, StockLevel, StockMovement, SupplyItem
from jingkong.command.tests import test_services_fixtures as fx
from jingkong.command.tests.test_services_fixtures import NOW
from jingkong.core.exceptions import Conflict, NotFound, ValidationFailed
from jingkong.core.models import DomainEvent

pytestmark = pytest.mark.django_db
sv_now = fx.sv_now  # shared fixture
A = Scope("330206002")
API = "/api/v1/command/supplies"


@pytest.fixture
def stock(regions, sv_now):
    kit = SupplyItem.objects.create(code="KIT", name="抗原试剂盒", category="test_kit", unit="盒")
    tube = SupplyItem.objects.create(code="TUBE", name="采样管", category="tube", unit="支")
    d1 = Depot.objects.create(code="D-A1", name="新碶一号仓", region_code=regions["grid_a1"].code)
    d2 = Depot.objects.create(code="D-A2", name="新碶二号仓", region_code=regions["grid_a2"].code)
    db = Depot.objects.create(code="D-B1", name="大碶仓", region_code=regions["grid_b1"].code)
    return {"kit": kit, "tube": tube, "d1": d1, "d2": d2, "db": db}


def qty(depot, item) -> int:
    row = StockLevel.objects.filter(depot=depot, item=item).first()
    return row.quantity if row else 0


def move(stock, kind, n=None, depot="d1", **kw):
    return supplies.movement_record(actor=None, scope=A, depot=stock[depot], item=kw.pop("item", stock["kit"]),
                                    kind=kind, quantity=n if kind != "adjustment" else None,
                                    counted=n if kind == "adjustment" else None, **kw)


def test_receipt_consumption_and_count(stock):
    move(stock, "receipt", 100)
    move(stock, "consumption", 30)
    assert qty(stock["d1"], stock["kit"]) == 70
    move(stock, "adjustment", 65, note="盘点")
    assert qty(stock["d1"], stock["kit"]) == 65
    assert StockMovement.objects.get(kind="adjustment").quantity == -5


def test_stock_never_goes_negative_and_the_refusal_names_the_item(stock):
    move(stock, "receipt", 10)
    with pytest.raises(ValidationFailed) as exc:
        move(stock, "consumption", 11)
    assert "抗原试剂盒" in exc.value.message and exc.value.extra["item"] == "KIT"
    assert exc.value.extra["in_stock"] == 10
    assert qty(stock["d1"], stock["kit"]) == 10 and StockMovement.objects.count() == 1


@pytest.mark.parametrize("kind,n", [("receipt", 0), ("receipt", -5), ("consumption", -1), ("adjustment", -1),
                                    ("transfer", -3)])
def test_negative_or_zero_quantities_are_refused(stock, kind, n):
    with pytest.raises(ValidationFailed):
        move(stock, kind, n, to_depot=stock["d2"])
    assert not StockMovement.objects.exists()


def test_a_transfer_is_a_pair_and_checks_the_sending_stock(stock):
    move(stock, "receipt", 50)
    result = move(stock, "transfer", 20, to_depot=stock["d2"], client_key="t-1")
    out = result.movement
    inn = StockMovement.objects.get(kind="transfer_in")
    assert (out.quantity, inn.quantity) == (-20, 20) and out.pair_id == inn.pk and inn.pair_id == out.pk
    assert (qty(stock["d1"], stock["kit"]), qty(stock["d2"], stock["kit"])) == (30, 20)
    with pytest.raises(ValidationFailed):
        move(stock, "transfer", 31, to_depot=stock["d2"])
    with pytest.raises(NotFound):  # to another street's depot
        move(stock, "transfer", 1, to_depot=stock["db"])
    assert (qty(stock["d1"], stock["kit"]), qty(stock["d2"], stock["kit"])) == (30, 20)


def test_the_same_client_key_applies_once(stock):
    first = move(stock, "receipt", 40, client_key="dev-1")
    again = move(stock, "receipt", 40, client_key="dev-1")
    assert first.created and not again.created and again.movement.pk == first.movement.pk
    assert qty(stock["d1"], stock["kit"]) == 40
    with pytest.raises(Conflict):
        move(stock, "receipt", 41, client_key="dev-1")
    t1 = move(stock, "transfer", 5, to_depot=stock["d2"], client_key="dev-2")
    t2 = move(stock, "transfer", 5, to_depot=stock["d2"], client_key="dev-2")
    assert t1.created and not t2.created and qty(stock["d2"], stock["kit"]) == 5


def test_a_depot_of_another_street_is_not_found(stock):
    with pytest.raises(NotFound):
        move(stock, "receipt", 1, depot="db")


def test_low_stock_alert_is_emitted_once_per_crossing(stock):
    supplies.threshold_set(actor=None, scope=A, depot=stock["d1"], item=stock["kit"], threshold=10)
    assert DomainEvent.objects.filter(type="command.low_stock").count() == 1  # 0 in stock is already low
    move(stock, "receipt", 50)
    move(stock, "consumption", 30)
    assert DomainEvent.objects.filter(type="command.low_stock").count() == 1
    move(stock, "consumption", 12)  # 8 left: crossing
    move(stock, "consumption", 3)  # still low: no new alert
    events = DomainEvent.objects.filter(type="command.low_stock").order_by("id")
    assert events.count() == 2 and events.last().payload == {"depot": "D-A1", "item": "KIT", "quantity": 8,
                                                             "threshold": 10}
    from jingkong.command import selectors_services as sel

    low = list(sel.stock_list(scope=A, low_only=True))
    assert [(s.depot.code, s.item.code, s.quantity) for s in low] == [("D-A1", "KIT", 5)]


def test_consumption_per_local_day(stock):
    from jingkong.command import selectors_services as sel

    move(stock, "receipt", 100)
    # 2022-01-02 23:30 and 2022-01-03 00:30 in Ningbo are two different days (15:30 and 16:30 UTC).
    move(stock, "consumption", 7, at=dt.datetime(2022, 1, 2, 15, 30, tzinfo=dt.UTC))
    move(stock, "consumption", 5, at=dt.datetime(2022, 1, 2, 16, 30, tzinfo=dt.UTC))
    move(stock, "consumption", 2, at=NOW)
    rows = sel.consumption_per_day(scope=A, days=3, now=NOW)
    assert [(r["day"], r["quantity"]) for r in rows] == [(dt.date(2022, 1, 2), 7), (dt.date(2022, 1, 3), 7)]


def test_stock_count_file_utf8_and_gbk_with_row_errors_and_idempotent(stock):
    text = ("仓库编码,物资编码,盘点数量,预警线\n"
            "D-A1,KIT,120,20\n"
            "D-A1,NOPE,5,\n"
            "D-B1,KIT,9,\n"
            "D-A2,TUBE,-4,\n"
            "D-A2,TUBE,300,\n")
    for encoding in ("utf-8", "gbk"):
        report = supplies.stock_counts_import(actor=None, scope=A, data=text.encode(encoding))
        assert report.rows == 5
        assert [(e["line"], e["field"]) for e in report.errors] == [(3, "item"), (4, "depot"), (5, "counted")]
        assert qty(stock["d1"], stock["kit"]) == 120 and qty(stock["d2"], stock["tube"]) == 300
        assert StockLevel.objects.get(depot=stock["d1"], item=stock["kit"]).low_threshold == 20
        assert qty(stock["db"], stock["kit"]) == 0
    assert report.applied == 0 and report.unchanged == 2  # the second run changed nothing
    assert StockMovement.objects.filter(kind="adjustment").count() == 2


def test_supplies_api(stock, officer_a, client_for):
    c = client_for(officer_a)
    r = c.post(f"{API}/depots/{stock['d1'].pk}/movements", {"item": "KIT", "kind": "receipt", "quantity": 30,
                                                           "client_key": "api-1"}, content_type="application/json")
    assert r.status_code == 201 and r.json()["stock"][0]["quantity"] == 30
    again = c.post(f"{API}/depots/{stock['d1'].pk}/movements", {"item": "KIT", "kind": "receipt", "quantity": 30,
                                                               "client_key": "api-1"}, content_type="application/json")
    assert again.status_code == 200 and qty(stock["d1"], stock["kit"]) == 30
    short = c.post(f"{API}/depots/{stock['d1'].pk}/movements", {"item": "KIT", "kind": "consumption",
                                                               "quantity": 31}, content_type="application/json")
    assert short.status_code == 422 and "抗原试剂盒" in short.json()["message"]
    for bad in ({"item": "KIT", "kind": "receipt", "quantity": -1}, {"item": "KIT", "kind": "receipt",
                                                                      "quantity": 1, "note": "\x00"},
                {"item": "KIT", "kind": "teleport", "quantity": 1}):
        assert c.post(f"{API}/depots/{stock['d1'].pk}/movements", bad,
                      content_type="application/json").status_code == 422
    assert c.get(f"{API}/depots/{stock['db'].pk}").status_code == 404
    assert c.post(f"{API}/depots/{stock['db'].pk}/movements", {"item": "KIT", "kind": "receipt", "quantity": 1},
                  content_type="application/json").status_code == 404
    moved = c.post(f"{API}/depots/{stock['d1'].pk}/movements", {"item": "KIT", "kind": "transfer", "quantity": 1,
                                                               "to_depot": "D-B1"}, content_type="application/json")
    assert moved.status_code == 404 and qty(stock["db"], stock["kit"]) == 0
    assert c.post(f"{API}/depots/{stock['d1'].pk}/thresholds", {"item": "KIT", "threshold": 40},
                  content_type="application/json").json()["low"] is True
    alerts = c.get(f"{API}/alerts").json()
    assert [(a["depot"], a["item"]) for a in alerts] == [("D-A1", "KIT")]
    assert [d["code"] for d in c.get(f"{API}/depots").json()] == ["D-A1", "D-A2"]
    assert c.get(f"{API}/totals").json()[0]["quantity"] == 30


def test_supplies_pages(stock, officer_a, client_for):
    c = client_for(officer_a)
    assert c.get("/command/supplies/").status_code == 200
    assert c.get("/command/supplies/depots/D-A1/").status_code == 200
    assert c.get("/command/supplies/depots/D-B1/").status_code == 404
    c.post("/command/supplies/depots/D-A1/movements/", {"item": "KIT", "kind": "receipt", "quantity": "12",
                                                        "client_key": "pg-1"})
    c.post("/command/supplies/depots/D-A1/movements/", {"item": "KIT", "kind": "receipt", "quantity": "12",
                                                        "client_key": "pg-1"})
    c.post("/command/supplies/depots/D-A1/movements/", {"item": "KIT", "kind": "consumption", "quantity": "99"})
    assert qty(stock["d1"], stock["kit"]) == 12
    c.post("/command/supplies/new/", {"what": "depot", "code": "D-NEW", "name": "新仓", "region_code": "330206004"})
    assert not Depot.objects.filter(code="D-NEW").exists()  # another street
    c.post("/command/supplies/new/", {"what": "depot", "code": "D-NEW", "name": "新仓", "region_code": "330206002001"})
    assert Depot.objects.filter(code="D-NEW").exists()


def test_stock_count_command(stock, tmp_path, capsys):
    from django.core.management import call_command

    good = tmp_path / "good.csv"
    good.write_bytes("depot,item,counted\nD-A1,KIT,7\n".encode("gbk"))
    call_command("supplies_import", str(good))
    assert qty(stock["d1"], stock["kit"]) == 7 and "1 applied" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("depot,item,counted\nD-A1,KIT,x\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        call_command("supplies_import", str(bad))
    assert exc.value.code == 3 and "line 2: counted" in capsys.readouterr().out


def test_a_sampling_site_can_be_a_depot(regions, officer_a, client_for):
    from jingkong.testing.models import SamplingSite

    site_a = SamplingSite.objects.create(code="S-A", name="新碶采样点", kind="fixed", region=regions["grid_a1"],
                                         region_code=regions["grid_a1"].code, lon=121.805, lat=29.905)
    site_b = SamplingSite.objects.create(code="S-B", name="大碶采样点", kind="fixed", region=regions["grid_b1"],
                                         region_code=regions["grid_b1"].code, lon=121.825, lat=29.905)
    c = client_for(officer_a)
    r = c.post(f"{API}/depots", {"code": "D-S-A", "name": "采样点物资", "kind": "site", "sampling_site_id": site_a.pk},
               content_type="application/json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["region_code"], body["sampling_site_id"], body["lon"]) == (site_a.region_code, site_a.pk, 121.805)
    refused = c.post(f"{API}/depots", {"code": "D-S-B", "name": "越界", "sampling_site_id": site_b.pk},
                     content_type="application/json")
    assert refused.status_code == 404 and not Depot.objects.filter(code="D-S-B").exists()
    dup = c.post(f"{API}/depots", {"code": "D-S-A", "name": "again", "region_code": regions["grid_a1"].code},
                 content_type="application/json")
    assert dup.status_code == 409
