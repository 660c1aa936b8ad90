"""/api/v1/command/ routes of the services area."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["command"])
