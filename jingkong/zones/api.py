"""/api/v1/zones/ — thin routes over services and selectors (every route declares its permission via the guard)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["zones"])
