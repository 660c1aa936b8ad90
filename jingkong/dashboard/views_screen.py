"""The one-screen command view (一屏掌控) page."""

from __future__ import annotations

from django.http import HttpResponse

from jingkong.access.guard import require
from jingkong.access.roles import Perm


@require(Perm.DASHBOARD_VIEW)
def screen(request):
    return HttpResponse("being written")
