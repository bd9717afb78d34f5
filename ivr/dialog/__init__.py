"""Dialog policy: transport-neutral, pure functions of (state, utterance) → (state, actions)."""
from ivr.dialog.machine import DialogEnv, escalate, next_actions, start_call
from ivr.dialog.selfservice import ActionRegistry, ActionRequest
from ivr.dialog.state import DialogState

__all__ = ["ActionRegistry", "ActionRequest", "DialogEnv", "DialogState", "escalate", "next_actions", "start_call"]
