from django.urls import path

from imaging.deid import views

app_name = "deid"
urlpatterns = [path("<uuid:case_id>.zip", views.case_deidentified_export, name="case_export")]
