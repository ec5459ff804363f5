from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/login", api.LoginApi.as_view(), name="auth-login"),
    path("auth/refresh", api.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutApi.as_view(), name="auth-logout"),
    path("auth/me", api.MeApi.as_view(), name="auth-me"),
    path("users/", api.UserListApi.as_view(), name="user-list"),
    path("users/<int:pk>/", api.UserDetailApi.as_view(), name="user-detail"),
]
