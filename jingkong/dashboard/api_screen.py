"""/api/v1/dashboard/ routes of the screen (being written: see docs/dashboard.md)."""

from __future__ import annotations

from ninja import Router

router = Router()
