"""Template context: the main navigation, showing only the sections the user's role may open."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from jingkong.access.roles import Perm

# (url, label, permission): a section appears when the user's role holds the permission.
SECTIONS = (
    ("/screen/", _("Command screen"), Perm.DASHBOARD_VIEW),
    ("/", _("Map"), Perm.MAP_VIEW),
    ("/testing/", _("Testing"), Perm.TESTING_VIEW),
    ("/tracing/", _("Tracing"), Perm.TRACING_VIEW),
    ("/zones/", _("Zones"), Perm.ZONES_VIEW),
    ("/codes/", _("Codes"), Perm.CODES_VIEW),
    ("/codes/checkpoints/", _("Checkpoints"), Perm.CHECKPOINT_VERIFY),
    ("/isolation/", _("Transfer & isolation"), Perm.ISOLATION_VIEW),
    ("/command/", _("Command"), Perm.COMMAND_VIEW),
    ("/command/tasks/", _("My tasks"), Perm.TASK_WORK),
    ("/admin/", _("Back office"), Perm.USER_ADMIN),
)


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_sections": []}
    path = request.path
    visible = [(url, label) for url, label, perm in SECTIONS if user.has_role_perm(perm)]
    # The longest matching prefix is the active section (/codes/checkpoints/ is not also /codes/).
    matching = [url for url, _label in visible if (path == "/" if url == "/" else path.startswith(url))]
    current = max(matching, key=len, default=None)
    return {"nav_sections": [{"url": url, "label": label, "active": url == current} for url, label in visible]}
