from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from jingkong.access import views

urlpatterns = [
    path("login/", login_not_required(views.login_view), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("healthz", login_not_required(views.health), name="health"),
]
