"""One logging setup for `ivr serve`, gunicorn and the CLI: every line carries time, level, logger, and the CallSid
and locale of the call it is about (set per request and per stream job); text by default, JSON lines with
IVR_LOG_FORMAT=json. Secrets never reach a log line through here: URLs are logged with their password masked."""
from __future__ import annotations

import contextvars
import json
import logging
import re

call_sid: contextvars.ContextVar[str] = contextvars.ContextVar("call_sid", default="-")
locale: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="-")
_PASSWORD = re.compile(r"(//[^:/@]*:)[^@]*@")


def mask_url(url: str) -> str:
    """redis://:s3cret@host:6379/0 → redis://:***@host:6379/0"""
    return _PASSWORD.sub(r"\1***@", url)


class CallFields(logging.Filter):
    """Adds the current call's CallSid and locale to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.call_sid = call_sid.get()
        record.locale = locale.get()
        return True


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "call_sid": getattr(record, "call_sid", "-"), "locale": getattr(record, "locale", "-"),
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


TEXT = "%(asctime)s %(levelname)s %(name)s [%(call_sid)s %(locale)s] %(message)s"


def configure(*, level: str = "INFO", fmt: str = "text") -> None:
    """Install the handler on the root logger (gunicorn's and werkzeug's loggers propagate to it), unless logging
    was configured already (by the host program, or a test runner)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.addFilter(CallFields())
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT))
    root.addHandler(handler)
    root.setLevel(level.upper())
