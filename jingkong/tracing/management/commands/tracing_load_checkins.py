from __future__ import annotations

from jingkong.tracing.lake import DEFAULT_DWELL_MINUTES
from jingkong.tracing.management.commands._lake_command import LakeLoadCommand


class Command(LakeLoadCommand):
    help = ("Load venue check-ins (场所码 scans: venue_code, id_number, checkin_at[, checkout_at]) into the check-in lake; "
            "unknown venues/persons and bad rows are reported (exit status 3 when rows were rejected).")
    kind = "tracing.load_checkins"
    what = "check-ins"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--default-dwell-minutes", type=int, default=DEFAULT_DWELL_MINUTES,
                            help="stay assumed for a check-in without a check-out time (flagged; default %(default)s)")

    def params(self, options) -> dict:
        return {"default_dwell_minutes": options["default_dwell_minutes"]}
