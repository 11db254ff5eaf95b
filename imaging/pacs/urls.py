from django.urls import path

from imaging.pacs import views

app_name = "pacs"
urlpatterns = [path("<uuid:case_id>/send", views.case_send, name="case_send")]
