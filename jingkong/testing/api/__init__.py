"""The testing API (/api/v1/testing/): one router assembled from the modules of this package."""

from __future__ import annotations

from ninja import Router

from jingkong.testing.api import campaigns, coverage, labs, sampling

router = Router(tags=["testing"])
for _module in (campaigns, sampling, labs, coverage):
    router.add_router("", _module.router)
