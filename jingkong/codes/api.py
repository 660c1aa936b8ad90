"""/api/v1/codes/ — assembled from one router per area (each area's module is thin over its services and selectors)."""

from __future__ import annotations

from ninja import Router

from jingkong.codes.api_checkpoints import router as checkpoints_router
from jingkong.codes.api_codes import router as codes_router
from jingkong.codes.api_tokens import router as tokens_router

router = Router(tags=["codes"])
router.add_router("", codes_router)
router.add_router("", tokens_router)
router.add_router("", checkpoints_router)
