"""/api/v1/dashboard/layers/… — the map layers of the screen (being written: see docs/dashboard.md)."""

from __future__ import annotations

from ninja import Router

router = Router()
