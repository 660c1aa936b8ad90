"""The command app's service entry point for other features (contract in /work/notes/common.md):

``create_auto_tasks(source, items, *, at=None)`` — tasks from the loop, idempotent on ``(source, source_key)``; see
:func:`jingkong.command.tasks.create_auto_tasks` for the item format.
"""

from __future__ import annotations

from jingkong.command.tasks import create_auto_tasks

__all__ = ["create_auto_tasks"]
