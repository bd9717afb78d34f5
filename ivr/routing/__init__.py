"""Routing: wait estimates and what the agent is told at the handoff (mood, summary)."""
