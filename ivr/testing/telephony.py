"""An in-memory Twilio REST API for tests and the simulator: it records every request and answers with SIDs."""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field


@dataclass
class FakeTelephony:
    rings: list[dict] = field(default_factory=list)  # {"sid", "to", "url", "status_callback", "timeout_s"}
    redirects: list[dict] = field(default_factory=list)  # {"queue_sid", "call_sid", "url"}
    hung_up: list[str] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)  # {"call_sid", "url"}: live calls given new TwiML
    holds: list[dict] = field(default_factory=list)  # {"conference", "call_sid", "on"}
    _ids: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ring(self, to: str, *, url: str, status_callback: str, timeout_s: int) -> str:
        with self._lock:
            sid = f"CAleg{next(self._ids):028d}"
            self.rings.append({"sid": sid, "to": to, "url": url, "status_callback": status_callback,
                               "timeout_s": timeout_s})
        return sid

    def redirect_queued(self, queue_sid: str, call_sid: str, *, url: str) -> None:
        with self._lock:
            self.redirects.append({"queue_sid": queue_sid, "call_sid": call_sid, "url": url})

    def hang_up(self, call_sid: str) -> None:
        with self._lock:
            self.hung_up.append(call_sid)

    def redirect_call(self, call_sid: str, *, url: str) -> None:
        with self._lock:
            self.moved.append({"call_sid": call_sid, "url": url})

    def hold(self, conference: str, call_sid: str, *, on: bool, hold_url: str) -> None:
        with self._lock:
            self.holds.append({"conference": conference, "call_sid": call_sid, "on": on})

    def rung(self, agent_id: str) -> list[dict]:
        return [ring for ring in self.rings if ring["to"] == f"client:{agent_id}"]
