from __future__ import annotations

from django.urls import path

from jingkong.zones import views

app_name = "zones"
urlpatterns = [
    path("", views.zone_list, name="zone_list"),
    path("propose/", views.propose, name="propose"),
    path("risk-areas/", views.risk_areas, name="risk_areas"),
    path("risk-areas/import/", views.risk_import, name="risk_import"),
    path("z/<str:ref>/", views.zone_detail, name="zone_detail"),
    path("z/<str:ref>/edit/", views.zone_edit, name="zone_edit"),
    path("z/<str:ref>/<str:action>/", views.zone_action, name="zone_action"),
]
