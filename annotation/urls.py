from django.urls import path

from .views import dashboard, imports, projects, quality, review
from .views import exports as export_views

app_name = "annotation"

urlpatterns = [
    path("projects/<int:project_id>/exports/", export_views.export_list, name="export_list"),
    path("projects/<int:project_id>/exports/preview/", export_views.export_preview, name="export_preview"),
    path(
        "projects/<int:project_id>/exports/<int:export_id>/", export_views.export_detail, name="export_detail"
    ),
    path(
        "projects/<int:project_id>/exports/<int:export_id>/download/",
        export_views.export_download,
        name="export_download",
    ),
    path("", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_create, name="project_create"),
    path("projects/<int:project_id>/", projects.project_detail, name="project_detail"),
    path("projects/<int:project_id>/settings/", projects.project_settings, name="project_settings"),
    path("projects/<int:project_id>/members/", projects.project_members, name="project_members"),
    path(
        "projects/<int:project_id>/members/<str:username>/remove/",
        projects.project_member_remove,
        name="project_member_remove",
    ),
    path("projects/<int:project_id>/import/", imports.project_import, name="project_import"),
    path("projects/<int:project_id>/queue/", review.queue, name="queue"),
    path("projects/<int:project_id>/queue/live/", review.queue_live, name="queue_live"),
    path("tasks/<int:task_id>/", review.task_detail, name="task"),
    path("tasks/<int:task_id>/annotate/", review.task_annotate, name="task_annotate"),
    path("tasks/<int:task_id>/skip/", review.task_skip, name="task_skip"),
    path("tasks/<int:task_id>/draft/", review.task_draft, name="task_draft"),
    path("projects/<int:project_id>/dashboard/", dashboard.dashboard, name="dashboard"),
    path("projects/<int:project_id>/dashboard/<slug:key>.csv", dashboard.dashboard_csv, name="dashboard_csv"),
    path("projects/<int:project_id>/agreement/", dashboard.agreement_tasks, name="agreement_tasks"),
    path("projects/<int:project_id>/adjudication/", quality.adjudication_queue, name="adjudication_queue"),
    path(
        "projects/<int:project_id>/adjudication/<int:task_id>/",
        quality.adjudication_task,
        name="adjudication_task",
    ),
    path("projects/<int:project_id>/quality/", quality.quality_settings, name="quality_settings"),
    path(
        "projects/<int:project_id>/members/<str:username>/resume/",
        quality.member_resume,
        name="member_resume",
    ),
    path("projects/<int:project_id>/webhooks/", quality.webhooks, name="webhooks"),
]
