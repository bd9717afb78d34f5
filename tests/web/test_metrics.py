"""`GET /metrics` scraped as Prometheus does, parsed with prometheus-client's own text parser."""
from prometheus_client.parser import text_string_to_metric_families

from tests.test_desk import CALL, queue_caller


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for sample in family.samples}


def test_metrics_count_calls_queues_streams_and_webhook_latency(app, twilio, client, clock):
    from tests.test_desk import MONDAY_10AM

    clock.now = MONDAY_10AM
    queue_caller(twilio)
    figures = scrape(client)
    assert figures[("ivr_calls_in_progress", ())] == 1
    assert figures[("ivr_queue_waiting", (("queue", "billing"),))] == 1
    assert figures[("ivr_streams_active", ())] == 0 and ("ivr_recogniser_lag_seconds", ()) in figures
    assert figures[("ivr_webhook_seconds_count", (("endpoint", "/voice/gather"),))] == 1
    twilio.post("/voice/status", {**CALL, "CallStatus": "completed"})
    after = scrape(client)
    assert after[("ivr_calls_in_progress", ())] == 0 and ("ivr_queue_waiting", (("queue", "billing"),)) not in after
