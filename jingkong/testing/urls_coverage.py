"""Coverage pages (under /testing/, namespace ``testing``): the progress board and the printable untested list."""

from __future__ import annotations

from django.urls import path

from jingkong.testing import views_coverage as v

urlpatterns = [
    path("campaigns/<int:campaign_id>/progress/", v.progress, name="coverage_progress"),
    path("campaigns/<int:campaign_id>/untested/<str:region_code>/", v.untested, name="coverage_untested"),
]
