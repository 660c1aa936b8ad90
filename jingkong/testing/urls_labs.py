"""Lab-side pages (under /testing/, namespace ``testing``): labs overview, a lab's board, pool-positive follow-up."""

from __future__ import annotations

from django.urls import path

from jingkong.testing import views_labs as v

urlpatterns = [
    path("labs/", v.labs, name="labs"),
    path("labs/<int:lab_id>/", v.lab_board, name="lab_board"),
    path("retests/", v.retests, name="retests"),
]
