"""The HTTP service: ``mapred serve``, one process in front of the NameNode and the master.

WebHDFS v1 for files, ``/api/v1`` for jobs and their results, ``/metrics`` for
Prometheus and a status page at ``/``.  It keeps no state of its own beyond
the token file: every answer comes from the store or the master.

``app.create_app(settings)`` builds the ASGI app; other subsystems add their
routes as router modules (see ``app.ROUTERS`` and docs/service.md).
"""
