"""DICOMweb routes (PS3.18 resource paths), twice: at the root of ``/dicomweb/`` for standard
clients that know only UIDs, and under ``/dicomweb/cases/<case public id>/`` where every UID is
taken from that one case (what the viewer uses; see imaging/dicomweb/access.py for why)."""

from __future__ import annotations

from django.urls import URLPattern, include, path, register_converter

from imaging.dicomweb import stow_views, views


class UidConverter:
    """A DICOM UID: digits and dots, at most 64 characters."""

    regex = r"[0-9]+(?:\.[0-9]+){0,40}"

    def to_python(self, value: str) -> str:
        if len(value) > 64:
            raise ValueError("not a UID")
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UidConverter, "uid")

STUDY = "studies/<uid:study_uid>"
SERIES = f"{STUDY}/series/<uid:series_uid>"
INSTANCE = f"{SERIES}/instances/<uid:instance_uid>"

routes: list[URLPattern] = [
    path("studies", stow_views.studies, name="search_studies"),
    path("series", views.search_series, name="search_all_series"),
    path("instances", views.search_instances, name="search_all_instances"),
    path(STUDY, stow_views.study, name="study"),
    path(f"{STUDY}/metadata", views.study_metadata, name="study_metadata"),
    path(f"{STUDY}/rendered", views.study_rendered, name="study_rendered"),
    path(f"{STUDY}/series", views.search_series, name="search_series"),
    path(f"{STUDY}/instances", views.search_instances, name="search_study_instances"),
    path(SERIES, views.retrieve_series, name="series"),
    path(f"{SERIES}/metadata", views.series_metadata, name="series_metadata"),
    path(f"{SERIES}/rendered", views.series_rendered, name="series_rendered"),
    path(f"{SERIES}/thumbnail", views.series_thumbnail, name="series_thumbnail"),
    path(f"{SERIES}/instances", views.search_instances, name="search_instances"),
    path(INSTANCE, views.retrieve_instance, name="instance"),
    path(f"{INSTANCE}/metadata", views.instance_metadata, name="instance_metadata"),
    path(f"{INSTANCE}/rendered", views.instance_rendered, name="instance_rendered"),
    path(f"{INSTANCE}/thumbnail", views.instance_thumbnail, name="instance_thumbnail"),
    path(f"{INSTANCE}/frames/<str:frames>", views.retrieve_frames, name="frames"),
    path(f"{INSTANCE}/frames/<int:frame>/rendered", views.instance_rendered, name="frame_rendered"),
]

app_name = "dicomweb"
urlpatterns = [*routes, path("cases/<uuid:case_id>/", include(routes))]
