"""The common tail of file-loading commands: sample rejected rows, point at the error file, exit 3 on rejections."""

from __future__ import annotations

from collections.abc import Callable


def report_rejections(write: Callable[[str], None], result: dict) -> None:
    """Print the job result's sample of rejected rows and the error file; exit with status 3 when rows were rejected.

    ``result`` holds ``errors_sample`` (dicts with line, field, reason), ``errors``, ``error_file`` and ``rejected``.
    Good rows are committed; the non-zero exit lets scripts notice the rejected ones.
    """
    for e in result["errors_sample"]:
        write(f"  line {e['line']}: {e['field'] or '-'}: {e['reason']}")
    if result["errors"] > len(result["errors_sample"]):
        write(f"  … {result['errors'] - len(result['errors_sample']):,} more")
    if result["error_file"]:
        write(f"rejected rows: {result['error_file']}")
    if result["rejected"]:
        raise SystemExit(3)
