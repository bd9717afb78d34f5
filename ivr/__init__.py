"""Voice IVR replacement: natural-language routing and warm transfer with context."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, request

from ivr import logs
from ivr.config import Settings

if TYPE_CHECKING:
    from ivr.nlu.catalog import GrammarCatalog

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 64 * 1024  # Twilio's webhooks are a few kB; a bigger body is refused before it is read


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. `test_config` may carry fakes: IVR_SETTINGS, REDIS_CLIENT, IVR_CLOCK, IVR_ACTIONS (a
    self-service registry), IVR_CATALOG (grammars already trained), IVR_TTS, IVR_RECOGNIZER_FACTORY, IVR_PACED,
    IVR_TELEPHONY (the REST seam that rings agents), IVR_BACKGROUND_WARM_UP, IVR_WARM_UP_GATE."""
    from ivr import speech, store, telephony, web
    from ivr.admin import GrammarWorkbench
    from ivr.conversation import Conversations
    from ivr.desk import AgentDesk
    from ivr.selfservice import registry_for
    from ivr.store.admins import AuditLog
    from ivr.store.agents import AgentStore
    from ivr.store.grammars import GrammarVersions
    from ivr.store.inbox import MissedUtterances
    from ivr.store.prompts import RedisPrivatePrompts, RedisSharedPrompts
    from ivr.telephony.client import telephony_for

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config.from_mapping(test_config or {})
    settings: Settings = app.config.get("IVR_SETTINGS") or Settings.from_env()
    app.config["IVR_SETTINGS"] = settings
    if not app.testing:
        logs.configure(level=settings.log_level, fmt=settings.log_format)
    if settings.insecure_skip_signature:
        log.warning("!!! IVR_INSECURE_SKIP_SIGNATURE is on: Twilio signatures are NOT checked. Never in production.")
    actions = app.config.get("IVR_ACTIONS") or registry_for(
        settings.selfservice_backends, secret=settings.selfservice_secret, timeout_s=settings.selfservice_timeout_s)
    log.info("self-service backends: %s", ", ".join(sorted(actions.names())) or "none (IVR_SELFSERVICE)")
    store.init_app(app)
    speech.init_app(app)
    prompts = app.extensions["ivr.speech"].prompts if app.extensions["ivr.speech"].tts else None
    if prompts is not None:  # prompt audio shared by every worker and instance that may serve a <Play> URL
        prompts.private = RedisPrivatePrompts(app.extensions["ivr.store"].redis, ttl_s=settings.call_ttl_s)
        prompts.shared = RedisSharedPrompts(app.extensions["ivr.store"].redis)
    versions = GrammarVersions(app.extensions["ivr.store"].redis)
    catalog = app.config.get("IVR_CATALOG")
    if catalog is None:
        catalog = grammar_catalog(app, settings, actions.names(), versions, prompts)
    else:
        if prompts is not None:
            for locale in catalog.locales():
                grammar = catalog.get(locale).grammar
                prompts.prerender(grammar.static_prompts(), grammar.locale)
        check_locale(settings, catalog)
    app.extensions["ivr.catalog"] = catalog
    app.extensions["ivr.workbench"] = GrammarWorkbench(versions, catalog, AuditLog(app.extensions["ivr.store"].redis),
                                                       app.config.get("IVR_CLOCK", time.time))
    clock = app.config.get("IVR_CLOCK", time.time)
    conversations = Conversations(app.extensions["ivr.store"], catalog, actions, clock,
                                  MissedUtterances(app.extensions["ivr.store"].redis, ttl_s=settings.inbox_ttl_s))
    app.extensions["ivr.conversations"] = conversations
    app.extensions["ivr.desk"] = AgentDesk(AgentStore(app.extensions["ivr.store"].redis),
                                           app.config.get("IVR_TELEPHONY") or telephony_for(settings), conversations,
                                           settings.public_url, settings.agent_ring_timeout_s, clock,
                                           settings.callback_attempts, settings.callback_retry_s)
    if not app.testing:
        app.extensions["ivr.desk"].run_sweeps()
    telephony.init_app(app)
    web.init_app(app)

    @app.errorhandler(413)
    def too_large(error):
        log.warning("413 %s from %s: body over %d bytes refused", request.path, request.remote_addr,
                    app.config["MAX_CONTENT_LENGTH"])
        return "request too large", 413

    return app


def grammar_catalog(app: Flask, settings: Settings, actions: Iterable[str], versions, prompts) -> GrammarCatalog:
    """The live grammars. A served app loads them in the background, so the process answers /healthz at once and
    /readyz once they are in (a webhook meanwhile waits a few seconds for them); tests and the tools that serve
    themselves (IVR_BACKGROUND_WARM_UP false) load them before the first request, unless a test holds the warm-up
    at IVR_WARM_UP_GATE."""
    from ivr.nlu.catalog import GrammarCatalog
    from ivr.nlu.encoder import configured_encoder

    catalog = GrammarCatalog(settings.grammar_dir, default_locale=settings.locale, known_actions=actions,
                             cache_dir=settings.cache_dir, published=versions)
    if prompts is not None:  # an edited grammar's prompts are rendered when it is installed
        catalog.on_install = lambda grammar: prompts.prerender(grammar.static_prompts(), grammar.locale)
    gate = app.config.get("IVR_WARM_UP_GATE")

    def warm_up() -> None:
        try:
            if gate is not None:
                gate.wait()
            catalog.encoder = configured_encoder(settings)
            log.info("NLU: %s", "n-grams + MiniLM sentence embeddings (English)" if catalog.encoder else "n-grams only")
            catalog.refresh()
            check_locale(settings, catalog)
            if not app.testing:
                catalog.watch()
                versions.listen(catalog.refresh, catalog.stopped)
        except Exception:
            log.exception("grammars not loaded: calls go to an agent until a grammar loads")
        finally:
            catalog.ready.set()

    if not app.config.get("IVR_BACKGROUND_WARM_UP", not app.testing) and gate is None:
        warm_up()
    else:
        threading.Thread(target=warm_up, daemon=True, name="warm-up").start()
    return catalog


def check_locale(settings: Settings, catalog: GrammarCatalog) -> None:
    if settings.locale not in catalog.locales():
        log.error("IVR_LOCALE=%s has no grammar under %s (have: %s): calls that name no locale get %s",
                  settings.locale, settings.grammar_dir, ", ".join(catalog.locales()) or "none",
                  catalog.locales()[0] if catalog.locales() else "an apology and an agent")

