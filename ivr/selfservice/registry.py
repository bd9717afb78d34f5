"""The registry of self-service backends, and the configured set of them for an app."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from ivr.types import SelfServiceRequest, SelfServiceResult

SelfServiceAction = Callable[[SelfServiceRequest], SelfServiceResult]


class ActionRegistry:
    """Name → action. One per app, so tests and deployments can register their own backends."""

    def __init__(self) -> None:
        self._actions: dict[str, SelfServiceAction] = {}

    def register(self, name: str, action: SelfServiceAction) -> None:
        self._actions[name] = action

    def names(self) -> set[str]:
        return set(self._actions)

    def run(self, name: str, request: SelfServiceRequest) -> SelfServiceResult:
        """Run an action; an unknown name or a crash is a failed result, never an exception to the caller."""
        action = self._actions.get(name)
        if action is None:
            return SelfServiceResult(text="", ok=False, data={"error": f"unknown action {name}"})
        try:
            return action(request)
        except Exception as exc:  # a backend fault must end at a human, not in silence
            return SelfServiceResult(text="", ok=False, data={"error": repr(exc)})


def registry_for(names: Iterable[str], *, secret: str = "", timeout_s: float = 3.0) -> ActionRegistry:
    """The backends named in IVR_SELFSERVICE, so a real backend plugs in without editing this project:
    - "demo": the demo billing backend;
    - "action=https://…": that action answered by an HTTP backend (slots POSTed as JSON, signed with `secret`);
    - "package.module:register": a function that takes the registry and registers actions on it;
    - "name": a package's entry point `name` in the "ivr.selfservice" group (the same kind of function)."""
    registry = ActionRegistry()
    for name in names:
        if name == "demo":
            from ivr.selfservice.demo import DemoBilling, register_demo_actions

            register_demo_actions(registry, DemoBilling.from_file())
        elif "=" in name:
            from ivr.selfservice.http import HttpBackend

            action, _, url = name.partition("=")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"self-service backend {name!r} in IVR_SELFSERVICE: use action=https://…")
            registry.register(action.strip(), HttpBackend(action.strip(), url.strip(), secret=secret,
                                                          timeout_s=timeout_s))
        elif ":" in name:
            _entry_point(name)(registry)
        else:
            _plugin(name)(registry)
    return registry


def _plugin(name: str) -> Callable[[ActionRegistry], None]:
    """An installed package's entry point in the "ivr.selfservice" group."""
    found = [point for point in entry_points(group="ivr.selfservice") if point.name == name]
    if not found:
        raise ValueError(f"unknown self-service backend {name!r} in IVR_SELFSERVICE (use demo, action=https://…, "
                         "module:function, or an installed package's ivr.selfservice entry point)")
    return found[0].load()


def _entry_point(spec: str) -> Callable[[ActionRegistry], None]:
    module_name, _, attribute = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"self-service backend {spec!r} in IVR_SELFSERVICE cannot be loaded: {exc}") from None
    if not callable(function):
        raise ValueError(f"self-service backend {spec!r} in IVR_SELFSERVICE is not a function")
    return function
