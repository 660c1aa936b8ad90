import pytest

from jingkong.access.models import AuditLog
from jingkong.core.models import DomainEvent
from jingkong.people import idnumber
from jingkong.people.importer import import_persons
from jingkong.people.models import Household, Person, Vulnerable
from jingkong.people.tests.helpers import make_buildings, person_row, read_errors, write_persons

pytestmark = pytest.mark.django_db

CHINESE_HEADER = ["身份证号", "姓名", "性别", "出生日期", "手机号", "户编号", "楼栋编号", "单元", "房号", "户籍地址",
                  "本地户籍", "重点群体", "重点行业", "工作单位", "工作场所码"]


@pytest.fixture
def buildings(regions):
    return make_buildings(regions)


def test_it_imports_a_gbk_file_with_chinese_headers(buildings, regions, tmp_path):
    rows = [person_row(i, vulnerable="老年人;慢性病" if i == 1 else "", industry="港口" if i == 2 else "")
            for i in range(1, 4)]
    path = write_persons(tmp_path / "gbk.csv", rows, encoding="gbk", header=CHINESE_HEADER)
    result = import_persons(path)
    assert (result.encoding, result.created, result.rejected) == ("gb18030", 3, 0)
    first = Person.objects.get(id_hash=idnumber.id_hash(rows[0]["id_number"]))
    assert first.name == "居民1" and first.grid == regions["grid_a1"]
    assert first.vulnerable == Vulnerable.ELDERLY | Vulnerable.CHRONIC
    assert first.id_masked == idnumber.id_mask(rows[0]["id_number"])
    assert Person.objects.get(name="居民2").industry == "port"


def test_it_reads_utf8_with_bom(buildings, tmp_path):
    path = write_persons(tmp_path / "bom.csv", [person_row(1)], encoding="utf-8-sig")
    assert import_persons(path).created == 1


def test_each_bad_row_is_reported_and_good_rows_are_kept(buildings, tmp_path):
    good = person_row(1)
    bad_check = person_row(2)
    bad_check["id_number"] = bad_check["id_number"][:17] + ("0" if bad_check["id_number"][17] != "0" else "1")
    dup = person_row(3)
    rows = [
        good,                                                     # line 2
        bad_check,                                                # line 3
        person_row(4, id_number="330206199902300011"),            # line 4 impossible birth date in the number
        person_row(5, birth_date="1999-01-01"),                   # line 5 disagrees
        person_row(6, building_code="NOPE"),                      # line 6
        person_row(7, building_code="", household_code="H-NOWHERE"),  # line 7
        person_row(8, workplace_venue_code="V-NOPE"),             # line 8
        dup,                                                      # line 9
        dict(dup, name="重复"),                                    # line 10
        person_row(11, sex="X"),                                  # line 11
        person_row(12, industry="mining"),                        # line 12
        person_row(13, vulnerable="elderly;alien"),               # line 13
        person_row(14, name=""),                                  # line 14
        person_row(15, birth_date="2001-02-30"),                  # line 15
    ]
    path = write_persons(tmp_path / "p.csv", rows)
    result = import_persons(path)
    assert result.created == 1 and result.rejected == 13
    assert Person.objects.count() == 1 and Person.objects.get().name == "居民1"
    errors = {(int(e["line"]), e["field"]): e["reason"] for e in read_errors(tmp_path / "p.csv.errors.csv")}
    assert "check digit" in errors[(3, "id_number")]
    assert "not a real date" in errors[(4, "id_number")]
    assert "disagrees with the ID number" in errors[(5, "birth_date")]
    assert "unknown building" in errors[(6, "building_code")]
    assert "unknown household" in errors[(7, "household_code")]
    assert "unknown venue" in errors[(8, "workplace_venue_code")]
    assert "also on line 10" in errors[(9, "id_number")] and "also on line 9" in errors[(10, "id_number")]
    assert "sex" in errors[(11, "sex")]
    assert "industry" in errors[(12, "industry")]
    assert "alien" in errors[(13, "vulnerable")]
    assert "required" in errors[(14, "name")]
    assert "not a real date" in errors[(15, "birth_date")]
    # Clear ID numbers never reach the error file.
    assert bad_check["id_number"] not in (tmp_path / "p.csv.errors.csv").read_text("utf-8-sig")


def test_malformed_records_are_reported_with_their_line(buildings, tmp_path):
    path = write_persons(tmp_path / "p.csv", [person_row(1), person_row(2)])
    text = path.read_text("utf-8").splitlines()
    path.write_text("\n".join([text[0], text[1], "only,three,fields", text[2]]) + "\n", "utf-8")
    result = import_persons(path)
    assert result.created == 2
    assert [(e.line, e.reason) for e in result.errors] == [(3, "the record has 3 fields, the header has 15")]


def test_reimport_updates_instead_of_duplicating(buildings, tmp_path):
    rows = [person_row(i) for i in range(1, 7)]
    first = import_persons(write_persons(tmp_path / "a.csv", rows))
    assert (first.created, first.updated, first.households_created) == (6, 0, 3)
    rows[0]["name"], rows[0]["building_code"] = "改名", "B-b2-1"
    second = import_persons(write_persons(tmp_path / "b.csv", rows))
    assert (second.created, second.updated, second.unchanged, second.households_created) == (0, 1, 5, 0)
    assert Person.objects.count() == 6 and Household.objects.count() == 3
    moved = Person.objects.get(id_hash=idnumber.id_hash(rows[0]["id_number"]))
    assert moved.name == "改名" and moved.building.code == "B-b2-1"
    assert sorted(h.members.count() for h in Household.objects.all()) == [1, 2, 3]


def test_an_interrupted_import_can_be_run_again(buildings, tmp_path):
    path = write_persons(tmp_path / "p.csv", [person_row(i) for i in range(1, 11)])
    with pytest.raises(RuntimeError, match="simulated interruption"):
        import_persons(path, chunk_size=4, fail_after_chunks=2)
    assert Person.objects.count() == 8  # two whole chunks committed
    result = import_persons(path, chunk_size=4)
    assert (result.created, result.updated, result.unchanged) == (2, 0, 8)
    assert Person.objects.count() == 10


def _import_audit_cover():
    """person id → the import audit records (by grid) whose id ranges include it."""
    cover: dict[int, list] = {}
    for record in AuditLog.objects.filter(action="person.import"):
        for first, last in record.detail["ids"]:
            for pid in range(first, last + 1):
                cover.setdefault(pid, []).append(record)
    return cover


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh-load", "chunked-upsert"])
def test_import_audits_every_person_written_by_grid_and_the_run_and_emits_one_event(buildings, commander, tmp_path,
                                                                                     fresh):
    path = write_persons(tmp_path / "p.csv", [person_row(i) for i in range(1, 8)])
    result = import_persons(path, actor=commander, fresh=fresh, chunk_size=3)
    records = AuditLog.objects.filter(action="person.import")
    assert {a.username for a in records} == {"commander"} and {a.detail["run"] for a in records} == {result.run}
    # Who, when, what, from where: every written person is covered by exactly one record, of its own grid.
    cover = _import_audit_cover()
    persons = list(Person.objects.select_related("grid"))
    assert sorted(cover) == sorted(p.pk for p in persons)
    for p in persons:
        assert len(cover[p.pk]) == 1 and cover[p.pk][0].region_code == p.grid.code
    assert sum(a.detail["count"] for a in records) == 7
    assert records.count() < 7  # grouped, not one record per person
    assert AuditLog.objects.filter(action="people.import").count() == 1
    event = DomainEvent.objects.get(type="people.imported")
    assert event.payload["created"] == 7 and event.payload["rejected"] == 0


def test_a_reimport_is_audited_again_and_person_audit_finds_both(buildings, commander, regions, tmp_path):
    from jingkong.access.guard import scope_of
    from jingkong.people.selectors import person_audit

    path = write_persons(tmp_path / "p.csv", [person_row(i) for i in range(1, 5)])
    first = import_persons(path, actor=commander)
    changed = write_persons(tmp_path / "q.csv", [person_row(i, name=f"新名{i}") for i in range(1, 5)])
    second = import_persons(changed, actor=commander)
    assert (second.created, second.updated) == (0, 4)
    imports = AuditLog.objects.filter(action="person.import").count()
    stamps = dict(Person.objects.values_list("pk", "updated_at"))
    third = import_persons(changed, actor=commander)  # the same file again: nothing written, nothing claimed
    assert (third.created, third.updated, third.unchanged) == (0, 0, 4)
    assert AuditLog.objects.filter(action="person.import").count() == imports
    assert dict(Person.objects.values_list("pk", "updated_at")) == stamps
    person = Person.objects.order_by("pk").last()
    from jingkong.access import audit

    audit.record(actor=commander, action="person.view", object_type="people.person", object_id=person.pk)
    trail = person_audit(scope=scope_of(commander), person_id=person.pk)
    assert [a.action for a in trail] == ["person.view", "person.import", "person.import"]
    assert {a.detail.get("run") for a in trail[1:]} == {first.run, second.run}
    other = Person.objects.order_by("pk").first()
    assert all(a.object_id != str(person.pk) for a in person_audit(scope=scope_of(commander), person_id=other.pk))


def test_dry_run_writes_nothing(buildings, tmp_path):
    path = write_persons(tmp_path / "p.csv", [person_row(1), person_row(2, sex="?")])
    result = import_persons(path, dry_run=True)
    assert (result.valid, result.rejected, Person.objects.count(), Household.objects.count()) == (1, 1, 0, 0)


def test_scope_prefix_hides_buildings_of_other_streets(buildings, regions, tmp_path):
    path = write_persons(tmp_path / "p.csv", [person_row(1), person_row(2)])  # 1 → street A, 2 → street B
    result = import_persons(path, scope_prefix=regions["street_a"].code)
    assert result.created == 1 and result.errors[0].field == "building_code"


def test_command_line(buildings, tmp_path, capsys):
    from django.core.management import call_command

    path = write_persons(tmp_path / "p.csv", [person_row(1), person_row(2, sex="?")])
    with pytest.raises(SystemExit) as exited:  # rows were rejected: status 3, good rows still committed
        call_command("import_persons", str(path), "--error-file", str(tmp_path / "err.csv"))
    assert exited.value.code == 3 and Person.objects.count() == 1
    out = capsys.readouterr().out
    assert "1 created" in out and "line 3: sex" in out
    assert read_errors(tmp_path / "err.csv")[0]["line"] == "3"


def _index_names():
    from django.db import connection

    with connection.cursor() as c:
        return {name for name, info in connection.introspection.get_constraints(c, "people_person").items()
                if info["index"] or info["unique"]}


def test_a_fresh_load_rebuilds_every_index_and_unique_still_holds(buildings, tmp_path):
    from django.db import IntegrityError, transaction

    before = _index_names()
    assert "people_person_id_hash_uniq" in before
    rows = [person_row(i) for i in range(1, 10)]
    result = import_persons(write_persons(tmp_path / "a.csv", rows))
    assert (result.created, result.updated, Person.objects.count()) == (9, 0, 9)
    assert _index_names() == before
    # Loaded in grid order: the persons of each grid have consecutive ids.
    by_grid = {}
    for pk, grid in Person.objects.order_by("pk").values_list("pk", "grid_id"):
        by_grid.setdefault(grid, []).append(pk)
    assert all(ids == list(range(ids[0], ids[0] + len(ids))) for ids in by_grid.values())
    p = Person.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Person.objects.create(id_hash=p.id_hash, id_masked=p.id_masked, name="copy", sex="F", birth_date=p.birth_date,
                              created_at=p.created_at, updated_at=p.updated_at)
    # A second load of the same file upserts (the table is no longer empty).
    rows[0]["name"] = "改名"
    again = import_persons(write_persons(tmp_path / "b.csv", rows))
    assert (again.created, again.updated, again.unchanged, Person.objects.count()) == (0, 1, 8, 9)
    assert Person.objects.get(id_hash=idnumber.id_hash(rows[0]["id_number"])).name == "改名"


def test_a_fresh_load_refuses_rows_with_dangling_foreign_keys(buildings, tmp_path):
    import numpy as np
    import pyarrow as pa
    from django.db import DatabaseError

    from jingkong.core import clock
    from jingkong.core.exceptions import ValidationFailed
    from jingkong.people import importer

    path = write_persons(tmp_path / "p.csv", [person_row(i) for i in range(1, 4)])
    prepared = importer.prepare(path, today=clock.today())
    importer.bulk_upsert_households(prepared.new_households)
    prepared.resolve_households(importer._households([h[0] for h in prepared.new_households]))
    prepared.columns["building_id"] = pa.array(np.array([10**9, 10**9 + 1, 10**9 + 2]), pa.int64())
    with pytest.raises((ValidationFailed, DatabaseError)):
        importer.fresh_load(prepared, prepared.result, actor=None, now=clock.now())
    assert Person.objects.count() == 0
    assert "people_person_id_hash_uniq" in _index_names()


def test_copy_text_escapes_and_writes_nulls_bools_and_constants():
    import pyarrow as pa

    from jingkong.people.importer import Const, copy_text

    cols = [pa.array(["a\tb", "back\\slash", "line\nbreak\r"]), pa.array([1, None, 3], pa.int64()),
            pa.array([True, False, None]), Const("it's"), Const(None), ["x", "y", "z"]]
    text = copy_text(cols, 0, 3).to_pybytes().decode()
    assert text.split("\n") == [
        "a\\tb\t1\tt\tit's\t\\N\tx",
        "back\\\\slash\t\\N\tf\tit's\t\\N\ty",
        "line\\nbreak\\r\t3\t\\N\tit's\t\\N\tz",
        "",
    ]
    assert copy_text(cols, 1, 2).to_pybytes().decode() == "back\\\\slash\t\\N\tf\tit's\t\\N\ty\n"


def test_id_ranges():
    import numpy as np

    from jingkong.people.importer import id_ranges, in_ranges

    assert id_ranges(np.array([7, 1, 2, 3, 9, 10])) == [[1, 3], [7, 7], [9, 10]]
    assert id_ranges(np.array([], np.int64)) == []
    assert in_ranges(8, [[1, 3], [7, 9]]) and not in_ranges(4, [[1, 3], [7, 9]])


def test_a_scoped_import_cannot_touch_persons_or_households_of_another_region(regions, tmp_path):
    """A street officer's upload (scope = street A) must not update a street-B resident or join a street-B household."""
    make_buildings(regions)
    resident_b = person_row(2, household_code="HB")  # building B-b1-1: street B
    import_persons(write_persons(tmp_path / "b.csv", [resident_b]))
    before = Person.objects.get()
    street_a = regions["street_a"].code
    rows = [
        person_row(2, name="冒名", building_code="B-a1-1", household_code="HA"),  # same ID number, street A building
        person_row(3, building_code="B-a1-1", household_code="HB"),  # street B's household
        person_row(5, building_code="B-a1-1", household_code="HA5"),  # fine
    ]
    result = import_persons(write_persons(tmp_path / "a.csv", rows), scope_prefix=street_a)
    assert (result.created, result.updated, result.rejected) == (1, 0, 2)
    reasons = {(e.line, e.field): e.reason for e in result.errors}
    assert "outside your region" in reasons[(2, "id_number")]
    assert "outside your scope" in reasons[(3, "household_code")]
    after = Person.objects.get(pk=before.pk)
    assert (after.name, after.grid_id, after.household.code) == (before.name, before.grid_id, "HB")
    assert Household.objects.get(code="HB").members.count() == 1


def test_a_file_without_the_required_columns_fails_once_with_the_reason(regions, tmp_path):
    from jingkong.core.exceptions import ValidationFailed

    path = tmp_path / "wrong.csv"
    path.write_text("身份证,名字,building_code\n330206199001011234,张三,B-a1-1\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as caught:
        import_persons(path)
    message = caught.value.message
    assert message.startswith("line 1:") and "id_number" in message and "birth_date" in message
    assert "身份证" in message  # the columns it did not recognise are named
    assert Person.objects.count() == 0
