"""HTTP surfaces for people and programs: the context API, the agent desk, the admin pages and Prometheus
metrics."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ivr.web import admin, desk, forms, metrics
    from ivr.web.api import bp, probes

    app.register_blueprint(bp)
    app.register_blueprint(probes)
    limiter = forms.init_app(app)
    desk.init_app(app, limiter)
    admin.init_app(app, limiter)
    metrics.init_app(app)
