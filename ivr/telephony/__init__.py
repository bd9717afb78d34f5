"""The only package that speaks Twilio: webhooks, TwiML, signatures (and, later, Media Streams)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ivr.telephony import agent_leg, media
    from ivr.telephony.webhooks import bp

    app.register_blueprint(bp)
    app.register_blueprint(agent_leg.bp)
    media.init_app(app)
