"""The staff workspace of an institution, and the patient's opinion page, one module per area.

Views parse input, fetch through an access helper (``review.decorators.case_endpoint``, which
audits every attempt), call one service, and render or redirect. ``review/urls.py`` maps each
URL to its area's module: ``queue``, ``case``, ``opinion``, ``patient``, ``roster`` (roster and
settings) and ``reports`` (dashboard and audit log); ``common`` holds what they share.
"""
