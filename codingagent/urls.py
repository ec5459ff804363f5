from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from codingagent import views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("projects.api_urls")),
    path("", include("analysis.api_urls")),
    path("", include("exports.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up code as a separate script, so the page needs no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-v1:schema"), name="docs"),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that do not name an icon (admin, API docs, raw files).
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include((api_v1, "api-v1"))),
    path("", include("analysis.urls")),
    path("", include("exports.urls")),
    path("", include("projects.urls")),
]

handler500 = "codingagent.views.server_error"
