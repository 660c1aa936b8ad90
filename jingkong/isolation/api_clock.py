"""/api/v1/isolation/ routes of the clock area."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["isolation"])
