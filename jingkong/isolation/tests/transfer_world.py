"""A small world for the transfer tests: buildings, households and people in the conftest regions, located contacts
and cases, a quarantine hotel and a designated hospital with rooms, vehicles, the 2021 (or 2022) profile in force."""

from __future__ import annotations

import datetime as dt
import itertools

NOW = dt.datetime(2022, 1, 5, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
_serial = itertools.count(1)


def activate(code: str = "cn-8th-2021"):
    from jingkong.geo.models import Region
    from jingkong.policy.models import PolicyProfile
    from jingkong.policy.selectors import active_profile_cache_clear
    from jingkong.policy.services import profile_activate, profile_install_builtin

    if not PolicyProfile.objects.filter(code=code).exists():
        profile_install_builtin()
    profile = PolicyProfile.objects.filter(code=code).order_by("-version").first()
    profile_activate(profile=profile, region=Region.objects.get(code="330206"), actor=None, reason="test",
                     at=dt.datetime(2021, 12, 1, tzinfo=dt.UTC))
    active_profile_cache_clear()


class TransferWorld:
    def __init__(self, regions):
        self.regions = regions
        self.buildings: dict[str, object] = {}
        self.households: dict[str, object] = {}

    def building(self, code: str, *, side: str = "a", lon: float | None = None, lat: float = 29.905):
        from jingkong.geo.models import Building

        if code not in self.buildings:
            grid = self.regions[f"grid_{side}1"]
            self.buildings[code] = Building.objects.create(
                code=code, grid=grid, address=f"{code} 号楼", lat=lat,
                lon=lon if lon is not None else (121.805 if side == "a" else 121.825))
        return self.buildings[code]

    def household(self, code: str, building):
        from jingkong.people.models import Household

        if code not in self.households:
            self.households[code] = Household.objects.create(code=code, building=building, grid=building.grid)
        return self.households[code]

    def person(self, name: str, *, building: str = "B1", household: str | None = None, side: str = "a",
               vulnerable: int = 0, birth: dt.date = dt.date(1980, 1, 1), address: bool = True):
        from jingkong.core import clock
        from jingkong.people.models import Person

        n = next(_serial)
        b = self.building(building, side=side) if address else None
        now = clock.now()
        return Person.objects.create(
            id_hash=f"transfer-{n:055d}", id_masked=f"330206********{n:04d}", name=name, sex="M",
            birth_date=birth, phone=f"1380000{n:04d}", grid=b.grid if b else self.regions[f"grid_{side}1"],
            building=b, household=self.household(household, b) if household and b else None, vulnerable=vulnerable,
            created_at=now, updated_at=now)

    def contact(self, person, *, tier: str = "close", status: str = "located", due_hours: int = 8):
        from jingkong.core import clock
        from jingkong.tracing.models import Contact

        now = clock.now()
        return Contact.objects.create(person=person, tier=tier, status=status, region_code=person.grid.code,
                                      queue_region_code=person.grid.code[:9], last_exposure_at=now - dt.timedelta(days=1),
                                      first_identified_at=now - dt.timedelta(hours=2),
                                      due_at=now + dt.timedelta(hours=due_hours),
                                      located_at=now - dt.timedelta(hours=1) if status == "located" else None,
                                      created_at=now, updated_at=now)

    def case(self, person):
        from jingkong.core import clock
        from jingkong.tracing.models import Case

        now = clock.now()
        return Case.objects.create(ref=f"T-2022-{next(_serial):04d}", person=person, first_positive_at=now,
                                   region_code=person.grid.code, created_at=now, updated_at=now)

    def facility(self, code: str, *, kind: str = "quarantine_hotel", rooms: int = 20, beds: int = 1,
                 region: str = "330206", lon: float = 121.81, lat: float = 29.93):
        from jingkong.core import clock
        from jingkong.isolation.models import Facility, Room

        f = Facility.objects.create(code=code, name=f"{code} 隔离点", kind=kind, region_code=region, lon=lon, lat=lat)
        Room.objects.bulk_create([Room(facility=f, number=f"{i:03d}", floor=1 + i // 10, kind="single", beds=beds,
                                       state_since=clock.now()) for i in range(rooms)])
        return f

    def vehicle(self, code: str, *, seats: int = 10, side: str = "a", accessible: bool = False,
                lon: float = 121.80, lat: float = 29.90):
        from jingkong.isolation.models import Vehicle

        return Vehicle.objects.create(code=code, plate=f"浙B{code}", type="minibus", seats=seats,
                                      accessible=accessible, depot_lon=lon, depot_lat=lat,
                                      region_code=self.regions[f"street_{side}"].code, driver_name="王师傅",
                                      driver_phone="13900001111")
