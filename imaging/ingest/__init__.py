"""Turning what a patient uploaded into studies, series, instances and reports.

- :mod:`imaging.ingest.unpack`: safe reading of zips (CDs sent as one archive).
- :mod:`imaging.ingest.dicom`: sniffing and header parsing of one file, preamble clearing.
- :mod:`imaging.ingest.pipeline`: the services (ingest an upload, store instances, counts).
- :mod:`imaging.ingest.preview`: one PNG per series.
- :mod:`imaging.ingest.consistency`: one patient per case.
- :mod:`imaging.ingest.reports`: report files, their text, and matching them to studies.
- :mod:`imaging.ingest.selectors`: what the wizard and the workspace show.
- :mod:`imaging.ingest.messages`: every sentence a patient may read about a file.
"""
