"""Pages of the transfer area under /isolation/ (the isolation board is the landing page)."""

from __future__ import annotations

from django.urls import path

from jingkong.isolation import views_transfer as views

urlpatterns: list = [
    path("", views.index, name="index"),
    path("transfers/", views.transfer_list, name="transfer_list"),
    path("transfers/map/", views.transfer_map, name="transfer_map"),
    path("transfers/group/", views.transfer_group, name="transfer_group"),
    path("transfers/plan/", views.transfer_plan, name="transfer_plan"),
    path("transfers/<int:transfer_id>/", views.transfer_detail, name="transfer_detail"),
    path("transfers/<int:transfer_id>/manifest/", views.transfer_manifest, name="transfer_manifest"),
    path("transfers/<int:transfer_id>/status/", views.transfer_status, name="transfer_status"),
    path("transfers/<int:transfer_id>/cancel/", views.transfer_cancel, name="transfer_cancel"),
    path("transfers/<int:transfer_id>/move/", views.transfer_move, name="transfer_move"),
    path("transfers/<int:transfer_id>/reorder/", views.transfer_reorder, name="transfer_reorder"),
    path("transfers/<int:transfer_id>/remove/", views.transfer_member_remove, name="transfer_member_remove"),
]
