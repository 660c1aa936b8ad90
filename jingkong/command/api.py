"""/api/v1/command/ — assembled from one router per area (each area's module is thin over its services and selectors)."""

from __future__ import annotations

from ninja import Router

from jingkong.command.api_directives import router as directives_router
from jingkong.command.api_services import router as services_router

router = Router(tags=["command"])
router.add_router("", directives_router)
router.add_router("", services_router)
