from __future__ import annotations

from django.urls import path

from jingkong.access import views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("healthz", views.health, name="health"),
]
