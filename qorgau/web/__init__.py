"""The server-rendered web UI: Jinja2 templates, a little htmx, no JavaScript build step.

Routes translate requests into service calls (``qorgau.core.auth``, ``qorgau.core.audit``) and render
templates in the reader's language; they hold no business logic. See :mod:`qorgau.web.routes`.
"""
