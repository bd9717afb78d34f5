"""Self-service backends: callables registered by name, referenced from grammars as `route.action`. The demo
billing backend is registered only when configured (IVR_SELFSERVICE=demo)."""
from ivr.selfservice.registry import ActionRegistry, SelfServiceAction, registry_for

__all__ = ["ActionRegistry", "SelfServiceAction", "registry_for"]
