"""The REST side of Twilio, for the calls the service places itself (agent legs): `twilio.rest.Client` behind
the `TelephonyClient` seam, and a stand-in that refuses politely when no credentials are configured."""
from __future__ import annotations

import logging

from twilio.rest import Client

from ivr.config import Settings
from ivr.types import TelephonyClient

log = logging.getLogger(__name__)


class TwilioClient:
    def __init__(self, account_sid: str, auth_token: str, caller_id: str):
        self.client = Client(account_sid, auth_token)
        self.caller_id = caller_id

    def ring(self, to: str, *, url: str, status_callback: str, timeout_s: int) -> str:
        detect = {} if to.startswith("client:") else {"machine_detection": "Enable"}  # an agent's voicemail is no agent
        call = self.client.calls.create(to=to, from_=self.caller_id, url=url, method="POST", timeout=timeout_s,
                                        status_callback=status_callback, status_callback_method="POST",
                                        status_callback_event=["completed"], **detect)
        return str(call.sid)

    def redirect_queued(self, queue_sid: str, call_sid: str, *, url: str) -> None:
        self.client.queues(queue_sid).members(call_sid).update(url=url, method="POST")

    def hang_up(self, call_sid: str) -> None:
        self.client.calls(call_sid).update(status="completed")

    def redirect_call(self, call_sid: str, *, url: str) -> None:
        self.client.calls(call_sid).update(url=url, method="POST")

    def hold(self, conference: str, call_sid: str, *, on: bool, hold_url: str) -> None:
        [room] = self.client.conferences.list(friendly_name=conference, status="in-progress", limit=1)
        room.participants(call_sid).update(hold=on, hold_url=hold_url, hold_method="GET")


class NoTelephony:
    """Without TWILIO_ACCOUNT_SID no agent is rung: callers wait in the Twilio queue for an agent who dequeues them
    another way (the stand-in says so once per attempt, loudly)."""

    def ring(self, to: str, *, url: str, status_callback: str, timeout_s: int) -> str:
        raise RuntimeError("no Twilio REST credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN): agents are not rung")

    def redirect_queued(self, queue_sid: str, call_sid: str, *, url: str) -> None:
        raise RuntimeError("no Twilio REST credentials: the caller cannot be moved out of the queue")

    def hang_up(self, call_sid: str) -> None:
        raise RuntimeError("no Twilio REST credentials")

    def redirect_call(self, call_sid: str, *, url: str) -> None:
        raise RuntimeError("no Twilio REST credentials")

    def hold(self, conference: str, call_sid: str, *, on: bool, hold_url: str) -> None:
        raise RuntimeError("no Twilio REST credentials")


def telephony_for(settings: Settings) -> TelephonyClient:
    if settings.twilio_account_sid and settings.twilio_auth_token:
        return TwilioClient(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_caller_id)
    log.warning("agent legs: TWILIO_ACCOUNT_SID not set, so no agent is rung (callers wait in the Twilio queue)")
    return NoTelephony()
