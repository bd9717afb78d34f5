"""HTTP surfaces for people and programs: the context API and the agent desk (admin pages come later)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ivr.web import desk
    from ivr.web.api import bp

    app.register_blueprint(bp)
    desk.init_app(app)
