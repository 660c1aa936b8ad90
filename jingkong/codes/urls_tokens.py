from __future__ import annotations

from django.urls import path

from jingkong.codes import views_tokens

urlpatterns = [
    path("show/", views_tokens.show, name="show"),
]
