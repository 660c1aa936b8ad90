from __future__ import annotations

from django.urls import include, path

app_name = "codes"
urlpatterns = [
    path("", include("jingkong.codes.urls_codes")),
    path("", include("jingkong.codes.urls_tokens")),
    path("", include("jingkong.codes.urls_checkpoints")),
]
