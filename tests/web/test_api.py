from tests.support import API_TOKEN

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def transfer_call(simulator, *said):
    from ivr.testing.simulator import CallerTurn, scripted_caller

    return simulator.place_call(scripted_caller([CallerTurn(say=s) for s in said]))


def test_context_record_holds_everything_the_caller_said(simulator, client):
    record = transfer_call(simulator, "my internet keeps dropping out")
    context = client.get(f"/api/calls/{record.call_sid}/context", headers=BEARER).get_json()
    assert context["intent"] == "internet_down" and context["queue"] == "tech_support"
    assert context["confidence"] > 0.5 and context["caller"] == "+15550100001" and context["locale"] == "en-US"
    assert [t["speaker"] for t in context["transcript"]] == ["ivr", "caller", "ivr"]
    assert context["transcript"][1]["text"] == "my internet keeps dropping out"
    assert all(isinstance(t["at"], float) for t in context["transcript"])
    assert context["alternatives"] and {"intent", "score"} <= set(context["alternatives"][0])
    assert context["agent_requested"] is False and context["retries"] == 0 and context["mood"] == "neutral"
    assert context["summary"].startswith("Caller is calling about internet not working")


def test_context_records_retries_agent_request_and_mood(simulator, client):
    record = transfer_call(simulator, "this is ridiculous", "useless machine", "agent")
    context = client.get(f"/api/calls/{record.call_sid}/context", headers=BEARER).get_json()
    assert context["agent_requested"] and context["retries"] >= 1 and context["mood"] == "frustrated"
    assert "asked for an agent" in context["summary"]


def test_context_api_requires_the_token(simulator, client):
    record = transfer_call(simulator, "my internet keeps dropping out")
    assert client.get(f"/api/calls/{record.call_sid}/context").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get(f"/api/calls/{record.call_sid}/context", headers=wrong).status_code == 401


def test_context_api_unknown_call_is_404(client):
    response = client.get("/api/calls/CAnothing/context", headers=BEARER)
    assert response.status_code == 404 and "no context" in response.get_json()["error"]


def test_health_reports_store_and_grammars(client):
    body = client.get("/api/health").get_json()
    assert body["store"] is True and body["locales"] == ["de-DE", "en-US"]


def test_unauthorised_is_json_with_the_scheme_it_wants(client):
    for headers in ({}, {"Authorization": API_TOKEN}, {"Authorization": f"Basic {API_TOKEN}"}):
        response = client.get("/api/calls/CA1/context", headers=headers)  # a token without "Bearer" is refused too
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Bearer" in response.get_json()["error"]


def test_liveness_and_readiness_probes(app, client):
    assert client.get("/healthz").get_json() == {"alive": True}
    prompts = app.extensions["ivr.speech"].prompts
    prompts._pool.submit(lambda: None).result()  # the grammar's prompts, queued at start, are rendered
    prompts._rendering[next(iter(prompts._public))] = None  # a grammar prompt still rendering: not ready yet
    warming = client.get("/readyz")
    assert warming.status_code == 503 and warming.get_json()["prompts_pending"] == 1
    prompts._rendering.clear()
    assert client.get("/readyz").status_code == 200 and client.get("/readyz").get_json()["ready"] is True


def test_a_warming_process_answers_healthz_at_once_and_turns_ready_only_when_its_grammars_are_in(
        settings, redis_client, clock):
    import threading

    from ivr import create_app
    from ivr.speech.tts import ToneRenderer
    from tests.support import CLASSIFIER_CACHE, TwilioHelper

    gate = threading.Event()  # holds the warm-up where a real one spends its seconds (encoder, training)
    app = create_app({"TESTING": True, "IVR_SETTINGS": settings.replace(nlu_encoder=False,
                                                                        cache_dir=str(CLASSIFIER_CACHE)),
                      "REDIS_CLIENT": redis_client, "IVR_CLOCK": clock, "IVR_TTS": ToneRenderer(),
                      "IVR_WARM_UP_GATE": gate})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    warming = client.get("/readyz")
    assert warming.status_code == 503 and warming.get_json()["grammar"] is False
    gate.set()
    assert app.extensions["ivr.catalog"].ready.wait(60)
    app.extensions["ivr.speech"].prompts._pool.submit(lambda: None).result()  # the grammar's prompts are rendered
    assert client.get("/readyz").get_json()["ready"] is True
    reply = TwilioHelper(client).post("/voice/incoming", {"CallSid": "CA" + "1" * 32, "From": "+15550100001"})
    assert "Northwind Telecom" in reply.get_data(as_text=True)


def test_a_webhook_during_warm_up_waits_for_the_grammars_then_answers(settings, redis_client, clock):
    import threading

    from ivr import create_app
    from ivr.speech.tts import ToneRenderer
    from tests.support import CLASSIFIER_CACHE, TwilioHelper

    gate = threading.Event()
    app = create_app({"TESTING": True, "IVR_SETTINGS": settings.replace(nlu_encoder=False,
                                                                        cache_dir=str(CLASSIFIER_CACHE)),
                      "REDIS_CLIENT": redis_client, "IVR_CLOCK": clock, "IVR_TTS": ToneRenderer(),
                      "IVR_WARM_UP_GATE": gate})
    ready, waiting = app.extensions["ivr.catalog"].ready, threading.Event()
    wait_for_ready = ready.wait
    ready.wait = lambda timeout=None: waiting.set() or wait_for_ready(timeout)  # type: ignore[method-assign]
    answered = []
    webhook = threading.Thread(target=lambda: answered.append(TwilioHelper(app.test_client()).post(
        "/voice/incoming", {"CallSid": "CA" + "2" * 32, "From": "+15550100001"}).get_data(as_text=True)))
    webhook.start()
    assert waiting.wait(30)  # the webhook is waiting for the grammars…
    gate.set()  # …when the warm-up finishes
    webhook.join(60)
    assert "Northwind Telecom" in answered[0]
