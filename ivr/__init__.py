"""Voice IVR replacement: natural-language routing and warm transfer with context."""
from __future__ import annotations

import logging
import time

from flask import Flask

from ivr.config import Settings

log = logging.getLogger(__name__)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. `test_config` may carry IVR_SETTINGS, REDIS_CLIENT, IVR_CLOCK and IVR_ACTIONS fakes."""
    from ivr import speech, store, telephony, web
    from ivr.conversation import Conversations
    from ivr.dialog import ActionRegistry
    from ivr.dialog.demo_backend import DemoBilling, register_demo_actions
    from ivr.nlu.catalog import GrammarCatalog
    from ivr.nlu.encoder import load_encoder

    app = Flask(__name__)
    app.config.from_mapping(test_config or {})
    settings: Settings = app.config.setdefault("IVR_SETTINGS", Settings.from_env())
    if settings.insecure_skip_signature:
        log.warning("!!! IVR_INSECURE_SKIP_SIGNATURE is on: Twilio signatures are NOT checked. Never in production.")

    actions = app.config.get("IVR_ACTIONS")
    if actions is None:
        actions = ActionRegistry()
        register_demo_actions(actions, DemoBilling.from_file())
    encoder = load_encoder() if settings.nlu_encoder else None
    log.info("NLU: %s", "n-grams + MiniLM sentence embeddings (English)" if encoder else "n-grams only")
    catalog = GrammarCatalog(settings.grammar_dir, default_locale=settings.locale, known_actions=actions.names(),
                             encoder=encoder)
    speech.init_app(app)
    if app.extensions["ivr.speech"].tts:
        catalog.on_install = lambda grammar: app.extensions["ivr.speech"].prompts.prerender(
            grammar.static_prompts(), grammar.locale)
    catalog.refresh()
    if not app.testing:
        catalog.watch()
    store.init_app(app)
    clock = app.config.get("IVR_CLOCK", time.time)
    app.extensions["ivr.conversations"] = Conversations(app.extensions["ivr.store"], catalog, actions, clock)
    telephony.init_app(app)
    web.init_app(app)
    return app
