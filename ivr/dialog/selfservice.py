"""Self-service actions: Python callables registered by name, referenced from grammars as `route.action`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr.types import SelfServiceResult


@dataclass(frozen=True)
class ActionRequest:
    """What an action gets: the collected slots and who is calling, in which language."""

    slots: dict[str, str]
    caller: str
    locale: str


SelfServiceAction = Callable[[ActionRequest], SelfServiceResult]


class ActionRegistry:
    """Name → action. One per app, so tests and deployments can register their own backends."""

    def __init__(self) -> None:
        self._actions: dict[str, SelfServiceAction] = {}

    def register(self, name: str, action: SelfServiceAction) -> None:
        self._actions[name] = action

    def names(self) -> set[str]:
        return set(self._actions)

    def run(self, name: str, request: ActionRequest) -> SelfServiceResult:
        """Run an action; an unknown name or a crash is a failed result, never an exception to the caller."""
        action = self._actions.get(name)
        if action is None:
            return SelfServiceResult(text="", ok=False, data={"error": f"unknown action {name}"})
        try:
            return action(request)
        except Exception as exc:  # a backend fault must end at a human, not in silence
            return SelfServiceResult(text="", ok=False, data={"error": repr(exc)})
