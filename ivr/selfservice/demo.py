"""DEMO self-service backends (balance, invoice copy) over a fixture file. Not a billing system: replace them."""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ivr.selfservice.registry import ActionRegistry
from ivr.types import SelfServiceRequest, SelfServiceResult

FIXTURE = Path(__file__).with_name("demo_accounts.yaml")

_TEXT = {
    "en": {
        "balance": "The balance on the account ending {last4} is {amount}, due on {due}.",
        "paid_up": "The account ending {last4} is fully paid. Nothing is due right now.",
        "sent": "I've sent a copy of your invoice from {date} to {email}.",
        "unknown": "I couldn't find an account with that number.",
    },
    "de": {
        "balance": "Auf dem Konto mit der Endung {last4} sind {amount} offen, fällig am {due}.",
        "paid_up": "Das Konto mit der Endung {last4} ist vollständig bezahlt. Derzeit ist nichts offen.",
        "sent": "Ich habe Ihnen eine Kopie Ihrer Rechnung vom {date} an {email} geschickt.",
        "unknown": "Ich konnte kein Kundenkonto mit dieser Nummer finden.",
    },
}


_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November",
           "Dezember"],
}
_CURRENCY = {"USD": ("dollars", "cents"), "EUR": ("euros", "cents")}


def spoken_amount(amount: float, currency: str, language: str) -> str:
    """84.2 USD → "84 dollars and 20 cents" / "84 Euro 20", the way a person would say it."""
    whole, cents = int(amount), round(amount * 100) % 100
    if language == "de":
        return f"{whole} {'Euro' if currency == 'EUR' else 'Dollar'}" + (f" {cents}" if cents else "")
    major, minor = _CURRENCY.get(currency, (currency, "cents"))
    return f"{whole} {major}" + (f" and {cents} {minor}" if cents else "")


def spoken_date(iso: str, language: str) -> str:
    """2026-12-03 → "December 3" / "3. Dezember"."""
    _, month, day = (int(part) for part in iso.split("-"))
    name = _MONTHS[language][month - 1]
    return f"{day}. {name}" if language == "de" else f"{name} {day}"


def _mask_email(email: str) -> str:
    user, _, domain = email.partition("@")
    return f"{user[:1]}***@{domain}"


@functools.cache
def _accounts(path: Path) -> dict[str, dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["accounts"]


@dataclass
class DemoBilling:
    """Fixture-backed accounts; `outbox` records the invoice copies it "sent" so tests can check them."""

    accounts: dict[str, dict]
    outbox: list[dict] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path = FIXTURE) -> DemoBilling:
        return cls(copy.deepcopy(_accounts(path)))  # each registry its own copy: a test may change an account

    def _lookup(self, request: SelfServiceRequest) -> tuple[dict | None, dict[str, str], str]:
        language = "de" if request.locale.startswith("de") else "en"
        return self.accounts.get(request.slots.get("account_number", "")), _TEXT[language], language

    def balance(self, request: SelfServiceRequest) -> SelfServiceResult:
        account, text, language = self._lookup(request)
        if account is None:
            return SelfServiceResult(text["unknown"], ok=False)
        last4 = request.slots["account_number"][-4:]
        key = "balance" if account["balance"] > 0 else "paid_up"
        words = text[key].format(last4=" ".join(last4),
                                 amount=spoken_amount(account["balance"], account["currency"], language),
                                 due=spoken_date(account["due"], language))
        return SelfServiceResult(words, data={"balance": account["balance"]})

    def invoice_copy(self, request: SelfServiceRequest) -> SelfServiceResult:
        account, text, language = self._lookup(request)
        if account is None:
            return SelfServiceResult(text["unknown"], ok=False)
        self.outbox.append({"to": account["email"], "invoice": account["last_invoice"]})
        words = text["sent"].format(date=spoken_date(account["last_invoice"], language),
                                    email=_mask_email(account["email"]))
        return SelfServiceResult(words, data={"sent_to": account["email"]})


def register_demo_actions(registry: ActionRegistry, billing: DemoBilling) -> None:
    """Register the demo actions under the names the shipped grammars use."""
    registry.register("account_balance", billing.balance)
    registry.register("send_invoice_copy", billing.invoice_copy)
