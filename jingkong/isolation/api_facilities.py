"""/api/v1/isolation/ routes of the facilities area."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["isolation"])
