from django.contrib import admin
from django.urls import path

from demo_site import views

urlpatterns = [
    path("", views.home),
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("comment", views.comment),
    path("admin/", admin.site.urls),
]
