"""Pages of the facilities area: /isolation/facilities/… and /isolation/orders/…."""

from __future__ import annotations

from django.urls import path

from jingkong.isolation import views_facilities as v

urlpatterns = [
    path("facilities/", v.facility_list, name="facility_list"),
    path("facilities/new/", v.facility_create, name="facility_create"),
    path("facilities/reserve/", v.reserve_page, name="facility_reserve"),
    path("facilities/<str:code>/", v.facility_board, name="facility_board"),
    path("facilities/<str:code>/rooms/", v.facility_rooms_create, name="facility_rooms_create"),
    path("facilities/<str:code>/rooms/<int:room_id>/state/", v.facility_room_state, name="facility_room_state"),
    path("facilities/<str:code>/assign/", v.facility_assign, name="facility_assign"),
    path("orders/", v.order_list, name="order_list"),
    path("orders/release-due/", v.orders_release_due, name="orders_release_due"),
    path("orders/<int:order_id>/", v.order_detail, name="order_detail"),
    path("orders/<int:order_id>/check/", v.order_check, name="order_check"),
    path("orders/<int:order_id>/release/", v.order_release, name="order_release"),
    path("orders/<int:order_id>/extend/", v.order_extend, name="order_extend"),
]
