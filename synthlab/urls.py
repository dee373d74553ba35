from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# The API first: its requests are the most frequent (the review queue), and each one would
# otherwise be tried against every page pattern before reaching its own.
urlpatterns = [
    path("api/v1/", include("annotation.api_urls")),
    path("api/v1/", include("generation.api_urls")),
    path("", include("annotation.urls")),
    path("", include("generation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
