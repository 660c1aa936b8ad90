"""The screen's live stream (server-sent events)."""

from __future__ import annotations

from django.http import HttpResponse

from jingkong.access.guard import require
from jingkong.access.roles import Perm


@require(Perm.DASHBOARD_VIEW)
def stream(request):
    return HttpResponse("being written", content_type="text/event-stream")
