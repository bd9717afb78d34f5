"""`GET /metrics` in Prometheus text format (prometheus-client), for operations: calls in progress and callers
waiting per queue (from Redis, so every worker reports the same), this process's stream count and recogniser lag,
and a webhook latency histogram per endpoint. Aggregate numbers only: no caller data."""
from __future__ import annotations

import time
from collections import Counter

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily


class LiveFigures:
    """Read at each scrape, so the figures are never stale and cost nothing between scrapes."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        store, speech = self.app.extensions["ivr.store"], self.app.extensions["ivr.speech"]
        calls = GaugeMetricFamily("ivr_calls_in_progress", "Calls between /voice/incoming and their final status")
        waiting = GaugeMetricFamily("ivr_queue_waiting", "Callers waiting for an agent", labels=["queue"])
        agents = GaugeMetricFamily("ivr_agents", "Agents by state", labels=["state"])
        try:
            calls.add_metric([], store.active_calls(now=time.time()))
            desk = self.app.extensions["ivr.desk"]
            for queue, count in Counter(w.queue for w in desk.agents.all_waiting()).items():
                waiting.add_metric([queue], count)
            for state, count in Counter(desk.agents.presence(a.id)["state"] for a in desk.agents.agents()).items():
                agents.add_metric([state], count)
        except Exception:  # the store is down: the scrape still answers with what this process knows
            pass
        yield calls
        yield waiting
        yield agents
        streams = GaugeMetricFamily("ivr_streams_active", "Media Streams open in this process")
        streams.add_metric([], speech.active_streams)
        yield streams
        lag = GaugeMetricFamily("ivr_recogniser_lag_seconds", "How far this process's recognisers are behind real time")
        lag.add_metric([], speech.lag_s())
        yield lag


def init_app(app: Flask) -> None:
    registry = CollectorRegistry()  # one per app: tests build many apps in one process
    registry.register(LiveFigures(app))  # type: ignore[arg-type]
    webhook_seconds = Histogram("ivr_webhook_seconds", "Time to answer a Twilio webhook", ["endpoint"],
                                registry=registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15))

    @app.before_request
    def started() -> None:
        g.ivr_started = time.perf_counter()

    @app.after_request
    def observed(response):
        if request.path.startswith("/voice/") and not request.path.startswith("/voice/audio/"):
            endpoint = request.url_rule.rule if request.url_rule else "unknown"
            webhook_seconds.labels(endpoint).observe(time.perf_counter() - g.get("ivr_started", time.perf_counter()))
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
