"""Pages of the services area: the public resident pages (/command/help/…), the request queue and a worker's own
requests (/command/services/…) and supplies (/command/supplies/…). See views_services.py."""

from __future__ import annotations

from django.urls import path

from jingkong.command import views_services as views

urlpatterns = [
    path("help/", views.help_home, name="help_home"),
    path("help/status/", views.help_status, name="help_status"),
    path("help/done/<str:ref>/", views.help_done, name="help_done"),
    path("services/", views.service_queue, name="service_queue"),
    path("services/new/", views.service_new, name="service_new"),
    path("services/mine/", views.service_mine, name="service_mine"),
    path("services/mine/<int:pk>/status/", views.service_mine_status, name="service_mine_status"),
    path("services/counts/", views.service_counts, name="service_counts"),
    path("services/<str:ref>/", views.service_detail, name="service_detail"),
    path("services/<str:ref>/assign/", views.service_assign, name="service_assign"),
    path("services/<str:ref>/status/", views.service_status, name="service_status"),
    path("supplies/", views.supply_board, name="supply_board"),
    path("supplies/new/", views.supply_new, name="supply_new"),
    path("supplies/import/", views.supply_import, name="supply_import"),
    path("supplies/depots/<str:code>/", views.supply_depot, name="supply_depot"),
    path("supplies/depots/<str:code>/movements/", views.supply_movement, name="supply_movement"),
    path("supplies/depots/<str:code>/thresholds/", views.supply_threshold, name="supply_threshold"),
    path("supplies/depots/<str:code>/edit/", views.supply_depot_edit, name="supply_depot_edit"),
]
