from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from jingkong.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("testing/", include("jingkong.testing.urls")),
    path("tracing/", include("jingkong.tracing.urls")),
    path("zones/", include("jingkong.zones.urls")),
    path("codes/", include("jingkong.codes.urls")),
    path("isolation/", include("jingkong.isolation.urls")),
    path("command/", include("jingkong.command.urls")),
    path("", include("jingkong.access.urls")),
    path("", include("jingkong.dashboard.urls")),
]
