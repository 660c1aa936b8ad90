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
Plotly's own bundle (``plotly/package_data/plotly.min.js`` of the installed ``plotly`` package) is at
``{% static 'plotly/plotly.min.js' %}`` — only that file: the package's data directory also holds datasets and a widget
bundle that have no business being served.
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


# URL prefix → (importable package, directory inside it, the only files served from there)
PACKAGE_FILES: dict[str, tuple[str, str, frozenset[str]]] = {
    "plotly": ("plotly", "package_data", frozenset({"plotly.min.js"})),
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
    for prefix, (module_name, subdir, _files) in PACKAGE_FILES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        root = Path(module.__file__).resolve().parent / subdir
        if root.is_dir():
            found.append((prefix, str(root)))
    return found


class OnlyFilesStorage(FileSystemStorage):
    """A storage over a package directory that lists only the named top-level files (nothing else is collected)."""

    def __init__(self, *args, only: frozenset[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.only = only

    def listdir(self, path):
        if path not in ("", "."):
            return [], []
        return [], sorted(name for name in self.only if self.exists(name))


class XStaticFinder(FileSystemFinder):
    """A FileSystemFinder over jingkong/static and the XStatic packages' data directories (not STATICFILES_DIRS)."""

    def __init__(self, app_names=None, *args, **kwargs):
        self.locations = xstatic_locations()
        self.storages = {}
        self.only: dict[str, frozenset[str]] = {}
        for prefix, root in self.locations:
            if prefix in PACKAGE_FILES:
                self.only[root] = PACKAGE_FILES[prefix][2]
                storage = OnlyFilesStorage(location=root, only=self.only[root])
            else:
                storage = FileSystemStorage(location=root)
            storage.prefix = prefix
            self.storages[root] = storage

    def find_location(self, root, path, prefix=None):
        """As FileSystemFinder, but a package directory answers only for its listed files."""
        if root in self.only:
            if prefix:
                prefix = f"{prefix}/"
                if not path.startswith(prefix):
                    return None
                path = path.removeprefix(prefix)
            if path not in self.only[root]:
                return None
            return super().find_location(root, path)
        return super().find_location(root, path, prefix)

    def check(self, **kwargs):
        return []
