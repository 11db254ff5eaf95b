"""Files staff download from SecondRead (CSV exports), built one way everywhere.

A bottom-layer package like ``audit`` and ``storage``: it imports nothing of the project, so
every app may use it.
"""
