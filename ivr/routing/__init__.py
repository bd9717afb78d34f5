"""Routing: queue hours, wait estimates and the handoff context record."""
