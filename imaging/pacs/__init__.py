"""Sending a case's studies to the institution's PACS, and receiving studies from hospitals.

- :mod:`imaging.pacs.destinations`: the PACS destinations admins set (and their secrets).
- :mod:`imaging.pacs.dimse`: DICOM networking with pynetdicom (C-ECHO, C-STORE as a client).
- :mod:`imaging.pacs.stow`: STOW-RS as a client (multipart/related POST).
- :mod:`imaging.pacs.sends`: staff ask for a send; a worker delivers it with retries.
"""
