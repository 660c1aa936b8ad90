"""/api/v1/codes/ — thin routes over services and selectors (every route declares its permission via the guard)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["codes"])
