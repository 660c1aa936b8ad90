"""/api/v1/isolation/ — assembled from one router per area (each area's module is thin over its services and selectors)."""

from __future__ import annotations

from ninja import Router

from jingkong.isolation.api_clock import router as clock_router
from jingkong.isolation.api_facilities import router as facilities_router
from jingkong.isolation.api_transfer import router as transfer_router

router = Router(tags=["isolation"])
router.add_router("", transfer_router)
router.add_router("", facilities_router)
router.add_router("", clock_router)
