"""/api/v1/codes/ routes of the tokens area."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["codes"])
