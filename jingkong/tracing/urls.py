from __future__ import annotations

from django.urls import path

from jingkong.tracing import views

app_name = "tracing"
urlpatterns = [
    path("", views.case_list, name="case_list"),
    path("cases/<str:ref>/", views.case_detail, name="case_detail"),
    path("cases/<str:ref>/notice/", views.case_notice, name="case_notice"),
    path("cases/<str:ref>/find/", views.case_find, name="case_find"),
    path("cases/<str:ref>/suggest/", views.case_suggest, name="case_suggest"),
    path("cases/<str:ref>/stays/add/", views.stay_add, name="stay_add"),
    path("cases/<str:ref>/stays/<int:stay_id>/", views.stay_edit, name="stay_edit"),
    path("cases/<str:ref>/stays/<int:stay_id>/delete/", views.stay_delete, name="stay_delete"),
    path("contacts/", views.contact_queue, name="contact_queue"),
    path("contacts/<int:contact_id>/status/", views.contact_status, name="contact_status"),
    path("handoffs/<int:handoff_id>/accept/", views.handoff_accept, name="handoff_accept"),
    path("links/<int:link_id>/<str:decision>/", views.link_decide, name="link_decide"),
    path("chains/", views.chains_view, name="chains"),
    path("clusters/<int:cluster_id>/rename/", views.cluster_rename, name="cluster_rename"),
]
