"""/api/v1/dashboard/ — the one-screen command view, assembled from one router per area.

* ``api_screen`` — figures read for the screen: summary tiles, the drill-down by child region, the epidemic curve
  with R(t), the five-stage clock, the alert feed.
* ``api_layers`` — the map layers: case points, testing sites, transfer routes, facilities, checkpoints, problems and
  service requests.
"""

from __future__ import annotations

from ninja import Router

from jingkong.dashboard.api_layers import router as layers_router
from jingkong.dashboard.api_screen import router as screen_router

router = Router(tags=["dashboard"])
router.add_router("", screen_router)
router.add_router("", layers_router)
