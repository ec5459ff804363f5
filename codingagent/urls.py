from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from codingagent import views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("projects.api_urls")),
    path("", include("analysis.api_urls")),
    path("", include("exports.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-v1:schema"), name="docs"),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include((api_v1, "api-v1"))),
    path("", include("analysis.urls")),
    path("", include("exports.urls")),
    path("", include("projects.urls")),
]
