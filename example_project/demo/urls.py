"""URLs of the example site (home, accounts, notifications, dashboard)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("notifications/", views.notifications, name="notifications"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
