"""Shared fixtures and helpers: a fresh app per test on real Redis (IVR_TEST_REDIS_URL, as in CI) or the embedded
store. Loaded as a plugin by conftest.py wherever tests run."""
from __future__ import annotations

import functools
import os
import tempfile
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import fakeredis
import pytest
import redis
from twilio.request_validator import RequestValidator
from werkzeug.routing.rules import Rule

from ivr import create_app
from ivr.config import ROOT, Settings
from ivr.nlu import Understanding
from ivr.nlu.catalog import GrammarCatalog
from ivr.nlu.encoder import load_encoder
from ivr.selfservice import registry_for
from ivr.speech.tts import ToneRenderer
from ivr.testing.simulator import FlaskTransport, TwilioSimulator
from ivr.testing.telephony import FakeTelephony

EVAL = Path(Settings.from_env().eval_dir)
GRAMMARS = ROOT / "grammars"
requires_eval = pytest.mark.skipif(not EVAL.exists(), reason=f"public evaluation data not at {EVAL}")
AUTH_TOKEN = "test-auth-token"
API_TOKEN = "test-api-token"
# A Wednesday at 10:00 in New York: every shipped queue is open.
OPEN_HOURS = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()


def _share_url_builders() -> None:
    """Every test builds a fresh app, and werkzeug compiles two URL-builder functions per route per app (~60 ms of
    the ~90 ms an app costs). A builder depends only on the rule's text, trace and defaults (it reads its converters
    from the rule it is called on), so apps in one test process share them."""
    compile_builder = Rule._compile_builder
    builders: dict = {}

    def shared(rule: Rule, append_unknown: bool = True):
        key = (rule.rule, tuple(rule._trace), tuple(sorted((rule.defaults or {}).items())), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(rule, append_unknown)
        return builders[key]

    Rule._compile_builder = shared  # type: ignore[method-assign]


_share_url_builders()


class FakeClock:
    """An injected clock: tests move time explicitly, never sleep."""

    def __init__(self, now: float = OPEN_HOURS):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_client():
    url = os.environ.get("IVR_TEST_REDIS_URL")
    if not url:
        yield fakeredis.FakeRedis(decode_responses=True)
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # parallel workers each get their own database
    url = urlsplit(url)._replace(path=f"/{int(worker.removeprefix('gw'))}").geturl()
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def grammar_dir() -> Path:
    return GRAMMARS


@pytest.fixture(scope="session")
def prompt_cache(tmp_path_factory) -> Path:
    """One prompt cache per test session: each app pre-renders the grammars' prompts, once is enough."""
    return tmp_path_factory.mktemp("audio")


@pytest.fixture
def settings(grammar_dir, prompt_cache, tmp_path) -> Settings:
    """Gather mode with <Say>, so TwiML and the simulator show prompt texts; prompts render to tones."""
    return Settings(twilio_auth_token=AUTH_TOKEN, api_token=API_TOKEN, grammar_dir=str(grammar_dir),
                    audio_dir=str(prompt_cache), gather_prompts="say", speech_mode="gather", selfservice="demo",
                    spool_dir=str(tmp_path / "spool"))


CLASSIFIER_CACHE = Path(tempfile.gettempdir()) / "ivr-test-classifiers"  # shared by the xdist workers and runs


@functools.cache
def trained_shipped_grammars() -> GrammarCatalog:
    """The shipped grammars, trained once per test session and shared by every app that serves them."""
    catalog = GrammarCatalog(GRAMMARS, default_locale="en-US", known_actions=registry_for(["demo"]).names(),
                             encoder=load_encoder(cache_dir=CLASSIFIER_CACHE), cache_dir=CLASSIFIER_CACHE)
    catalog.refresh()
    return catalog


@pytest.fixture(scope="session")
def shipped_catalog() -> GrammarCatalog:
    return trained_shipped_grammars()


def make_app(settings, redis_client, clock, **extra):
    """A fresh app; grammars are trained anew only when a test points at its own grammar folder."""
    config = {"TESTING": True, "IVR_SETTINGS": settings, "REDIS_CLIENT": redis_client, "IVR_CLOCK": clock,
              "IVR_TTS": ToneRenderer(), **extra}
    if Path(settings.grammar_dir) == GRAMMARS and settings.locale == "en-US":
        config.setdefault("IVR_CATALOG", trained_shipped_grammars())
    return create_app(config)


@pytest.fixture
def phone() -> FakeTelephony:
    """The Twilio REST API the service rings agents through, in memory: it records every request."""
    return FakeTelephony()


@pytest.fixture
def app(settings, redis_client, clock):
    return make_app(settings, redis_client, clock)


@pytest.fixture
def client(app):
    return app.test_client()


class TwilioHelper:
    """Posts webhooks signed exactly as Twilio signs them (signature checks stay on in tests)."""

    def __init__(self, client, base_url: str = "http://localhost"):
        self.client = client
        self.base_url = base_url
        self.validator = RequestValidator(AUTH_TOKEN)

    def post(self, path: str, params: dict, *, signature: str | None = None):
        if signature is None:
            signature = self.validator.compute_signature(self.base_url + path, params)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def twilio(client) -> TwilioHelper:
    return TwilioHelper(client)


@pytest.fixture
def simulator(client) -> TwilioSimulator:
    return TwilioSimulator(FlaskTransport(client), auth_token=AUTH_TOKEN, api_token=API_TOKEN)


@pytest.fixture(scope="session")
def understanding(shipped_catalog) -> Understanding:
    return shipped_catalog.get("en-US")
