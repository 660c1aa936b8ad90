"""Health-code pages (under /codes/, namespace ``codes``)."""

from __future__ import annotations

from django.urls import path

from jingkong.codes import views_codes as v

urlpatterns = [
    path("", v.board, name="codes_board"),
    path("people/", v.people_list, name="codes_people"),
    path("people/<int:person_id>/", v.person_code, name="codes_person"),
    path("people/<int:person_id>/override/", v.override_create, name="codes_override"),
    path("overrides/<int:override_id>/revoke/", v.override_revoke, name="codes_override_revoke"),
    path("recompute/", v.recompute, name="codes_recompute"),
]
