"""Pages of the clock area: /isolation/clock/…."""

from __future__ import annotations

from django.urls import path

from jingkong.isolation import views_clock as v

urlpatterns = [
    path("clock/", v.clock_page, name="clock"),
    path("clock/report/", v.clock_report, name="clock_report"),
    path("clock/report.csv", v.clock_report_csv, name="clock_report_csv"),
    path("clock/plotly.min.js", v.plotly_js, name="clock_plotly"),
]
