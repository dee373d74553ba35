from django.urls import path

from .api import auth, projects
from .api import exports as exports_api
from .api import imports as imports_api
from .api import quality as quality_api
from .api import review as review_api

urlpatterns = [
    path("projects/<int:project_id>/exports/", exports_api.ExportListApi.as_view(), name="api-exports"),
    path(
        "projects/<int:project_id>/exports/preview/",
        exports_api.ExportPreviewApi.as_view(),
        name="api-export-preview",
    ),
    path("exports/<int:export_id>/", exports_api.ExportDetailApi.as_view(), name="api-export"),
    path(
        "exports/<int:export_id>/download/",
        exports_api.ExportDownloadApi.as_view(),
        name="api-export-download",
    ),
    path("auth/token/", auth.TokenObtainApi.as_view(), name="api-token"),
    path("projects/", projects.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<int:project_id>/members/", projects.MemberListApi.as_view(), name="api-members"),
    path(
        "projects/<int:project_id>/members/<str:username>/",
        projects.MemberDetailApi.as_view(),
        name="api-member",
    ),
    path("projects/<int:project_id>/items/", projects.ItemListApi.as_view(), name="api-items"),
    path("projects/<int:project_id>/items/<int:item_id>/", projects.ItemDetailApi.as_view(), name="api-item"),
    path(
        "projects/<int:project_id>/candidates/", projects.CandidateCreateApi.as_view(), name="api-candidates"
    ),
    path("projects/<int:project_id>/tasks/next/", review_api.TaskNextApi.as_view(), name="api-tasks-next"),
    path(
        "tasks/<int:task_id>/annotations/", review_api.AnnotationCreateApi.as_view(), name="api-task-annotate"
    ),
    path("tasks/<int:task_id>/skip/", review_api.TaskSkipApi.as_view(), name="api-task-skip"),
    path(
        "projects/<int:project_id>/annotations/",
        review_api.AnnotationListApi.as_view(),
        name="api-annotations",
    ),
    path("projects/<int:project_id>/import/", imports_api.ImportApi.as_view(), name="api-import"),
    path("projects/<int:project_id>/webhooks/", quality_api.WebhookListApi.as_view(), name="api-webhooks"),
    path(
        "projects/<int:project_id>/webhooks/<int:webhook_id>/",
        quality_api.WebhookDetailApi.as_view(),
        name="api-webhook",
    ),
    path(
        "projects/<int:project_id>/webhooks/<int:webhook_id>/deliveries/",
        quality_api.WebhookDeliveryListApi.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "projects/<int:project_id>/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/resend/",
        quality_api.WebhookDeliveryResendApi.as_view(),
        name="api-webhook-delivery-resend",
    ),
    path("projects/<int:project_id>/stats/", quality_api.StatsApi.as_view(), name="api-stats"),
    path(
        "projects/<int:project_id>/agreement/tasks/",
        quality_api.LowAgreementApi.as_view(),
        name="api-low-agreement",
    ),
    path(
        "projects/<int:project_id>/adjudication/",
        quality_api.AdjudicationQueueApi.as_view(),
        name="api-adjudication-queue",
    ),
    path("tasks/<int:task_id>/review/", quality_api.TaskReviewApi.as_view(), name="api-task-review"),
    path("projects/<int:project_id>/gold/", quality_api.GoldApi.as_view(), name="api-gold"),
    path(
        "projects/<int:project_id>/assignments/", quality_api.AssignmentApi.as_view(), name="api-assignments"
    ),
    path(
        "projects/<int:project_id>/members/<str:username>/pause/",
        quality_api.MemberPauseApi.as_view(),
        name="api-member-pause",
    ),
]
