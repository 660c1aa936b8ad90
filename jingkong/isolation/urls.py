from __future__ import annotations

from django.urls import include, path

app_name = "isolation"
urlpatterns = [
    path("", include("jingkong.isolation.urls_transfer")),
    path("", include("jingkong.isolation.urls_facilities")),
    path("", include("jingkong.isolation.urls_clock")),
]
