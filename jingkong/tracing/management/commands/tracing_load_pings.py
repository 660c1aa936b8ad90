from __future__ import annotations

from jingkong.tracing.management.commands._lake_command import LakeLoadCommand


class Command(LakeLoadCommand):
    help = ("Load location pings (id_number, lon, lat, at) into the check-in lake for space-time companion matching; "
            "bad rows are reported (exit status 3 when rows were rejected).")
    kind = "tracing.load_pings"
    what = "location pings"
