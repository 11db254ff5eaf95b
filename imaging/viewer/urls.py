from django.urls import path

from imaging.viewer import views

app_name = "viewer"
urlpatterns = [
    path("<uuid:case_id>/", views.viewer_page, name="page"),
]
