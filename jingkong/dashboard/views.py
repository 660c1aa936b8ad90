from __future__ import annotations

from django.shortcuts import render

from jingkong.access.guard import require
from jingkong.access.roles import Perm


@require(Perm.MAP_VIEW)
def home(request):
    """Landing page: the base map of the user's region."""
    return render(request, "dashboard/home.html", {"scope_region": request.jk_user.region})
