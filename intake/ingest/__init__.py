"""Turning what a patient uploaded into studies, series, instances and reports.

- :mod:`intake.ingest.unpack`: safe reading of zips (CDs sent as one archive).
- :mod:`intake.ingest.dicom`: sniffing and header parsing of one file, preamble clearing.
- :mod:`intake.ingest.pipeline`: the services (ingest an upload, store instances, counts).
- :mod:`intake.ingest.preview`: one PNG per series.
- :mod:`intake.ingest.consistency`: one patient per case.
- :mod:`intake.ingest.reports`: report files, their text, and matching them to studies.
- :mod:`intake.ingest.selectors`: what the wizard and the workspace show.
- :mod:`intake.ingest.messages`: every sentence a patient may read about a file.
"""
