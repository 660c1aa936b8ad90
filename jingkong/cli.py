"""The ``jingkong`` command.

``jingkong NAME [ARGS]`` runs the platform's management command NAME; ``jingkong GROUP ACTION`` runs
``GROUP_ACTION`` when it exists (e.g. ``jingkong import persons FILE`` runs ``import_persons``);
``jingkong manage ...`` passes anything through to Django's management commands (migrate, shell, ...).
"""

from __future__ import annotations

import os
import sys

SUMMARY = """\
usage: jingkong COMMAND [ARGS]

Jingkong (精控) — outbreak-response command platform.

Commands:
{commands}

  manage ARGS...       any Django management command (e.g. 'jingkong manage migrate')

'jingkong COMMAND --help' shows a command's options.
"""


def _setup(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jingkong.settings")
    if argv[:1] == ["demo"]:
        os.environ.setdefault("JINGKONG_DEMO", "1")
    import django

    django.setup()
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):  # the embedded database's folder must exist before the first connect
        from pathlib import Path

        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)


def _jingkong_commands() -> dict[str, str]:
    from django.core.management import get_commands, load_command_class

    found = {}
    for name, app in sorted(get_commands().items()):
        if not app.startswith("jingkong"):
            continue
        try:
            help_text = (load_command_class(app, name).help or "").strip().splitlines()[0]
        except Exception:  # noqa: BLE001 - a broken command must not break --help
            help_text = ""
        found[name] = help_text
    return found


def _resolve(argv: list[str], commands: dict[str, str]) -> list[str] | None:
    if len(argv) >= 2:
        joined = f"{argv[0]}_{argv[1]}".replace("-", "_")
        if joined in commands:
            return [joined, *argv[2:]]
    name = argv[0].replace("-", "_")
    if name in commands:
        return [name, *argv[1:]]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _setup(argv)
    except Exception as exc:  # configuration errors: say what is wrong, no traceback
        from jingkong.core.env import ConfigError

        if isinstance(exc, ConfigError):
            sys.stderr.write(f"jingkong: configuration error: {exc}\n")
            return 2
        raise
    from django.core.management import execute_from_command_line

    commands = _jingkong_commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        lines = []
        for name, text in commands.items():
            shown = name.replace("_", " ", 1).replace("_", "-")  # import_persons -> 'import persons'
            lines.append(f"  {shown:<20} {text}")
        sys.stdout.write(SUMMARY.format(commands="\n".join(lines)))
        return 0
    if argv[0] == "manage":
        execute_from_command_line(["jingkong", *argv[1:]])
        return 0
    resolved = _resolve(argv, commands)
    group = [name.split("_", 1)[1].replace("_", "-") for name in commands if name.startswith(argv[0] + "_")]
    if resolved is None and group:
        sys.stderr.write(f"jingkong {argv[0]}: say what to {argv[0]}: {', '.join(sorted(group))}\n")
        return 2
    if resolved is None:
        sys.stderr.write(f"jingkong: unknown command {' '.join(argv[:2])!r}; see 'jingkong --help'\n")
        return 2
    execute_from_command_line(["jingkong", *resolved])
    return 0


if __name__ == "__main__":
    sys.exit(main())
