from django.urls import path

from imaging.viewer import api, views

app_name = "viewer"
urlpatterns = [
    path("<uuid:case_id>/", views.viewer_page, name="page"),
    path("<uuid:case_id>/annotations/", api.annotation_list, name="annotations"),
    path("<uuid:case_id>/annotations/<uuid:annotation_id>/", api.annotation_detail, name="annotation"),
]
