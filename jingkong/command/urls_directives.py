"""Pages of the directives area (namespace ``command``): the landing roll-up, directives and their chain, the task
list for grid workers and volunteers, problems found and the field worker registry. See views_directives.py."""

from __future__ import annotations

from django.urls import path

from jingkong.command import views_directives as v

urlpatterns = [
    path("", v.index, name="index"),
    path("directives/", v.directive_list, name="directive_list"),
    path("directives/new/", v.directive_new, name="directive_new"),
    path("directives/<str:ref>/", v.directive_detail, name="directive_detail"),
    path("directives/<str:ref>/cancel/", v.directive_cancel, name="directive_cancel"),
    path("tasks/", v.task_list, name="task_list"),
    path("tasks/<int:task_id>/", v.task_detail, name="task_detail"),
    path("tasks/<int:task_id>/acknowledge/", v.task_acknowledge, name="task_acknowledge"),
    path("tasks/<int:task_id>/report/", v.task_report, name="task_report"),
    path("tasks/<int:task_id>/reassign/", v.task_reassign, name="task_reassign"),
    path("photos/reports/<int:report_id>/", v.report_photo, name="report_photo"),
    path("photos/problems/<str:ref>/", v.problem_photo, name="problem_photo"),
    path("problems/", v.problem_list, name="problem_list"),
    path("problems/new/", v.problem_new, name="problem_new"),
    path("problems/<str:ref>/", v.problem_detail, name="problem_detail"),
    path("problems/<str:ref>/update/", v.problem_update, name="problem_update"),
    path("workers/", v.worker_list, name="worker_list"),
    path("workers/new/", v.worker_new, name="worker_new"),
    path("workers/<int:worker_id>/", v.worker_edit, name="worker_edit"),
]
