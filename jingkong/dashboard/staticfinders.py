"""Serve the installed XStatic packages (Leaflet, Leaflet.markercluster) as static files, offline — and the
project-wide assets in ``jingkong/static/`` (e.g. ``jingkong/app.css``), which belong to no app.

Enable with (settings.py)::

    STATICFILES_FINDERS = [
        "django.contrib.staticfiles.finders.FileSystemFinder",
        "django.contrib.staticfiles.finders.AppDirectoriesFinder",
        "jingkong.dashboard.staticfinders.XStaticFinder",
    ]

Files are then at ``{% static 'xstatic/leaflet/leaflet.js' %}`` and
``{% static 'xstatic/leaflet-markercluster/leaflet.markercluster.js' %}``; WhiteNoise (WHITENOISE_USE_FINDERS) serves them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from django.contrib.staticfiles.finders import FileSystemFinder
from django.core.files.storage import FileSystemStorage

# URL prefix under STATIC_URL → importable XStatic package
XSTATIC_PACKAGES = {
    "xstatic/leaflet": "xstatic.pkg.leaflet",
    "xstatic/leaflet-markercluster": "xstatic.pkg.leaflet_markercluster",
}


PROJECT_STATIC = Path(__file__).resolve().parent.parent / "static"


def xstatic_locations() -> list[tuple[str, str]]:
    found = [("", str(PROJECT_STATIC))] if PROJECT_STATIC.is_dir() else []
    for prefix, module_name in XSTATIC_PACKAGES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append((prefix, str(module.BASE_DIR)))
    return found


class XStaticFinder(FileSystemFinder):
    """A FileSystemFinder over jingkong/static and the XStatic packages' data directories (not STATICFILES_DIRS)."""

    def __init__(self, app_names=None, *args, **kwargs):
        self.locations = xstatic_locations()
        self.storages = {}
        for prefix, root in self.locations:
            storage = FileSystemStorage(location=root)
            storage.prefix = prefix
            self.storages[root] = storage

    def check(self, **kwargs):
        return []
