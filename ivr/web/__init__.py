"""HTTP surfaces for people and programs: the context API, the agent desk and Prometheus metrics (admin pages come
later)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ivr.web import desk, metrics
    from ivr.web.api import bp, probes

    app.register_blueprint(bp)
    app.register_blueprint(probes)
    desk.init_app(app)
    metrics.init_app(app)
