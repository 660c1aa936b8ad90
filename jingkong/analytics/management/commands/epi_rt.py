"""``jingkong epi rt``: R_t (Cori et al. 2013) from a daily incidence CSV; see docs/epi-rt.md."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jingkong.analytics import rt
from jingkong.analytics.epi_files import InputError, read_incidence, read_si_distr

HEADER = ["t_start", "t_end", "mean_r", "std_r", "q025", "q50", "q975"]


def _number(value: float) -> str:
    return f"{value:.6g}"


def _read(path_text: str, option: str) -> bytes:
    path = Path(path_text)
    if not path.is_file():
        raise CommandError(f"{option}: no such file: {path_text}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{option}: cannot read {path_text}: {exc.strerror}") from None


class Command(BaseCommand):
    help = ("Time-varying reproduction number R_t (Cori et al. 2013, as EpiEstim) on sliding windows from a CSV "
            "date,local[,imported] (UTF-8 or GBK/GB18030); writes t_start,t_end,mean_r,std_r,q025,q50,q975.")
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--incidence", required=True, metavar="FILE",
                            help="CSV with columns date,local[,imported], one row per consecutive day")
        parser.add_argument("--si-mean", type=float, default=None, metavar="M",
                            help="mean serial interval in days (> 1), with --si-sd; discretised as EpiEstim discr_si")
        parser.add_argument("--si-sd", type=float, default=None, metavar="S", help="sd of the serial interval (> 0)")
        parser.add_argument("--si-distr", default=None, metavar="FILE",
                            help="discrete serial interval from day 0 (which must be 0): one value per line or a CSV "
                                 "column si")
        parser.add_argument("--window", type=int, default=rt.DEFAULT_WINDOW, help="window length in days (default 7)")
        parser.add_argument("--mean-prior", type=float, default=rt.DEFAULT_MEAN_PRIOR,
                            help="mean of the gamma prior on R (default 5)")
        parser.add_argument("--std-prior", type=float, default=rt.DEFAULT_STD_PRIOR,
                            help="sd of the gamma prior on R (default 5)")
        parser.add_argument("--out", default=None, metavar="FILE", help="write the CSV here (default: standard output)")

    def handle(self, *args, incidence, si_mean, si_sd, si_distr, window, mean_prior, std_prior, out, **options):
        parametric = si_mean is not None or si_sd is not None
        if parametric and si_distr:
            raise CommandError("give either --si-mean and --si-sd, or --si-distr, not both")
        if parametric and (si_mean is None or si_sd is None):
            raise CommandError("--si-mean and --si-sd go together: give both")
        if window < 1:
            raise CommandError(f"--window must be at least 1 day, not {window}")
        for option, value in (("--mean-prior", mean_prior), ("--std-prior", std_prior)):
            if not (math.isfinite(value) and value > 0):
                raise CommandError(f"{option} must be greater than 0, not {value}")

        try:
            series = read_incidence(_read(incidence, "--incidence"))
        except InputError as exc:
            raise CommandError(self._problems("--incidence", incidence, exc)) from None
        days = len(series.dates)

        if si_distr:
            try:
                si, note = read_si_distr(_read(si_distr, "--si-distr"))
            except InputError as exc:
                raise CommandError(self._problems("--si-distr", si_distr, exc)) from None
            if note:
                self.stderr.write(f"note: {si_distr}: {note}")
        else:
            if not parametric:
                si_mean, si_sd = rt.DEFAULT_SI_MEAN, rt.DEFAULT_SI_SD
                self.stderr.write(f"note: no serial interval given; using mean {si_mean} and sd {si_sd} days "
                                  "(SARS-CoV-2, Nishiura et al. 2020)")
            if not (math.isfinite(si_mean) and si_mean > 1):
                raise CommandError(f"--si-mean must be greater than 1 (days), not {si_mean}")
            if not (math.isfinite(si_sd) and si_sd > 0):
                raise CommandError(f"--si-sd must be greater than 0, not {si_sd}")
            si = rt.discretise_si(si_mean, si_sd, max_days=max(days - 1, 1))

        # Without an imported column every case of the first day is imported (EpiEstim's convention); later days
        # are local. With one, cases reported as local on the first day are moved to imported, as EpiEstim does.
        local = list(series.local)
        imported = list(series.imported) if series.imported is not None else [0] * days
        if days:
            imported[0] += local[0]
            local[0] = 0
        try:
            windows = rt.estimate(local, imported, si=si, window=window, mean_prior=mean_prior, std_prior=std_prior)
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADER)
        for w in windows:
            writer.writerow([series.dates[w.start].isoformat(), series.dates[w.end].isoformat(), _number(w.mean_r),
                             _number(w.std_r), _number(w.q025), _number(w.q50), _number(w.q975)])
        if out:
            try:
                Path(out).write_text(buffer.getvalue(), encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"--out: cannot write {out}: {exc.strerror}") from None
        else:
            self.stdout.write(buffer.getvalue(), ending="")

        if days < window + 1:
            self.stderr.write(f"note: {days} day(s) of incidence: a {window}-day window needs at least {window + 1} "
                              "(the first day only seeds the epidemic); no estimate")
        skipped = (max(days - window, 0)) - len(windows)
        if skipped > 0:
            self.stderr.write(f"note: {skipped} window(s) left out: no earlier case could infect in them, or they end "
                              "before the mean serial interval")
        needed = rt.min_cases(mean_prior=mean_prior, std_prior=std_prior)
        thin = sum(1 for w in windows if w.cases < needed)
        if thin:
            self.stderr.write(f"note: {thin} window(s) have fewer than {needed} local cases: posterior CV above "
                              f"{rt.DEFAULT_CV_POSTERIOR} (estimate R with care)")
        if out:
            self.stderr.write(f"{len(windows)} window(s) written to {out}")

    @staticmethod
    def _problems(option: str, path: str, exc: InputError) -> str:
        lines = [f"{option} {path}: {len(exc.problems) + exc.more} problem(s)"]
        lines += [f"  {p}" for p in exc.problems]
        if exc.more:
            lines.append(f"  … and {exc.more} more")
        return "\n".join(lines)
