from __future__ import annotations

from django.urls import path

from jingkong.dashboard import stream, views, views_screen

urlpatterns = [
    path("", views.home, name="home"),
    path("screen/", views_screen.screen, name="screen"),
    path("screen/stream", stream.stream, name="screen_stream"),
]
