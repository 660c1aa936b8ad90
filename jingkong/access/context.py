"""Template context: the main navigation, showing only the sections the user's role may open."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from jingkong.access.roles import Perm

# (url, label, permission): a section appears when the user's role holds the permission.
SECTIONS = (
    ("/", _("Map"), Perm.MAP_VIEW),
    ("/testing/", _("Testing"), Perm.TESTING_VIEW),
    ("/tracing/", _("Tracing"), Perm.TRACING_VIEW),
    ("/admin/", _("Back office"), Perm.USER_ADMIN),
)


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_sections": []}
    path = request.path
    sections = []
    for url, label, perm in SECTIONS:
        if user.has_role_perm(perm):
            active = path == "/" if url == "/" else path.startswith(url)
            sections.append({"url": url, "label": label, "active": active})
    return {"nav_sections": sections}
