"""HTTP surfaces for people and programs: the context API (agent console and admin pages come later)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ivr.web.api import bp

    app.register_blueprint(bp)
