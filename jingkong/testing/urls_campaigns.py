"""Pages of rounds and sites (under /testing/, namespace ``testing``)."""

from __future__ import annotations

from django.urls import path

from jingkong.testing import views_campaigns as v

urlpatterns = [
    path("", v.index, name="index"),
    path("campaigns/new/", v.campaign_new, name="campaign_new"),
    path("campaigns/<int:campaign_id>/", v.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/update/", v.campaign_update, name="campaign_update"),
    path("campaigns/<int:campaign_id>/start/", v.campaign_start, name="campaign_start"),
    path("campaigns/<int:campaign_id>/close/", v.campaign_close, name="campaign_close"),
    path("campaigns/<int:campaign_id>/areas/", v.campaign_area, name="campaign_area"),
    path("campaigns/<int:campaign_id>/areas/<int:area_id>/delete/", v.campaign_area_delete,
         name="campaign_area_delete"),
    path("campaigns/<int:campaign_id>/assign-buildings/", v.campaign_assign, name="campaign_assign"),
    path("campaigns/<int:campaign_id>/sites/", v.site_board, name="site_board"),
    path("campaigns/<int:campaign_id>/slots.csv", v.assignments_csv, name="assignments_csv"),
    path("campaigns/<int:campaign_id>/sites/new/", v.site_create, name="site_create"),
    path("campaigns/<int:campaign_id>/sites/<int:site_id>/deactivate/", v.site_deactivate, name="site_deactivate"),
    path("campaigns/<int:campaign_id>/door-to-door/", v.door_to_door, name="door_to_door"),
    path("key-industries/", v.key_industries, name="key_industries"),
    path("key-industries/workers/", v.key_industry_workers, name="key_industry_workers"),
]
