"""Lab-side pages (under /testing/, namespace ``testing``): labs overview, a lab's board (with the forms to receive a
batch, enter a result and upload a results file, and an upload's progress), pool-positive follow-up."""

from __future__ import annotations

from django.urls import path

from jingkong.testing import views_labs as v

urlpatterns = [
    path("labs/", v.labs, name="labs"),
    path("labs/<int:lab_id>/", v.lab_board, name="lab_board"),
    path("labs/<int:lab_id>/receive/", v.lab_receive, name="lab_receive"),
    path("labs/<int:lab_id>/result/", v.lab_result_entry, name="lab_result_entry"),
    path("labs/<int:lab_id>/upload/", v.lab_upload, name="lab_upload"),
    path("labs/<int:lab_id>/uploads/<int:job_id>/", v.lab_upload_status, name="lab_upload_status"),
    path("retests/", v.retests, name="retests"),
]
