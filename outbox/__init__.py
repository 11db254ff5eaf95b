"""The transactional outbox: every side effect that leaves the database (emails now; PACS sends
and outbound webhooks later) is written as a row in the same transaction as the change that
causes it, then carried out by a Celery task after commit, retried with back-off, and marked
delivered only once it succeeded.

The bottom layer: any app may enqueue, and registers how its kinds are delivered
(``outbox.deliverers.register``), so this app never imports the ones above it.

    from outbox.services import enqueue
    enqueue(kind="email", key=f"case-status:{case.pk}:{n}", payload={...})
"""
