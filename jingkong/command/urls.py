from __future__ import annotations

from django.urls import include, path

app_name = "command"
urlpatterns = [
    path("", include("jingkong.command.urls_directives")),
    path("", include("jingkong.command.urls_services")),
]
