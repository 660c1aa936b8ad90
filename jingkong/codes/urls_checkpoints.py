"""Pages of the checkpoints area under /codes/checkpoints/… and /codes/venues/… (fixed paths before <code> ones)."""

from __future__ import annotations

from django.urls import path

from jingkong.codes import views_checkpoints as views

urlpatterns = [
    path("checkpoints/", views.checkpoint_list, name="checkpoint_list"),
    path("checkpoints/new/", views.checkpoint_create, name="checkpoint_create"),
    path("checkpoints/passes/", views.passes, name="passes"),
    path("checkpoints/passes/issue/", views.pass_issue, name="pass_issue"),
    path("checkpoints/passes/<str:number>/revoke/", views.pass_revoke, name="pass_revoke"),
    path("checkpoints/<str:code>/", views.checkpoint_board, name="checkpoint_board"),
    path("checkpoints/<str:code>/verify/", views.checkpoint_verify, name="checkpoint_verify"),
    path("venues/", views.venue_list, name="venue_list"),
    path("venues/referrals/", views.referrals, name="referrals"),
    path("venues/referrals/<int:referral_id>/status/", views.referral_status, name="referral_status"),
    path("venues/<str:venue_code>/", views.venue_entry, name="venue_entry"),
]
