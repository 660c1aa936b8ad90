from __future__ import annotations

from jingkong.tracing.management.commands._lake_command import LakeLoadCommand


class Command(LakeLoadCommand):
    help = ("Load transport passenger lists (id_number, mode, number, date[, carriage, seat]) into the check-in lake; "
            "bad rows are reported (exit status 3 when rows were rejected).")
    kind = "tracing.load_transport"
    what = "passenger lists"
