"""/api/v1/codes/ routes of the checkpoints area."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["codes"])
