"""One storage interface for every file of SecondRead (studies, reports, logos, opinion PDFs).

Application code goes through :func:`storage.tenant.tenant_storage`, which scopes every key to the
current tenant's schema. The raw backend (:func:`storage.backends.get_backend`) is for
platform-level work only: health checks, usage totals, deleting a whole tenant's files.

Keys are opaque ids (UUIDs and fixed folder names), never names derived from patient data.
"""
