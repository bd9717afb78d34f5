"""The admin pages: access control and CSRF on every endpoint, versions (draft, check, publish gate, rollback),
hot reload across two app instances sharing one Redis, the inbox's promotion, the test console, privacy
requests and the audit log."""
from __future__ import annotations

import threading

import pytest

from ivr.store.grammars import GrammarVersions
from ivr.testing.simulator import CallerTurn, FlaskTransport, TwilioSimulator, scripted_caller
from tests.support import API_TOKEN, AUTH_TOKEN, CLASSIFIER_CACHE, make_app
from tests.web.conftest import csrf_token

URL_ARGS = {"locale": "en-US", "entry_id": "0", "number": 1, "name": "pay_bill", "form": "intent"}


def admin_endpoints(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin.") and rule.endpoint not in ("admin.login", "admin.login_post",
                                                                         "admin.static"):
            url = rule.build({k: v for k, v in URL_ARGS.items() if k in rule.arguments})[1]
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule.endpoint, method, url


def call(app, *turns: str):
    """A simulated call to the app (same process: no restart between calls), signed for its public URL."""
    simulator = TwilioSimulator(FlaskTransport(app.test_client()), auth_token=AUTH_TOKEN, api_token=API_TOKEN,
                                base_url=app.config["IVR_SETTINGS"].public_url or "http://localhost")
    return simulator.place_call(scripted_caller([CallerTurn(say=t) for t in turns]))


def test_every_admin_endpoint_needs_a_sign_in_a_csrf_token_and_for_changes_the_admin_role(admin_app, sam):
    anonymous = admin_app.test_client()
    endpoints = list(admin_endpoints(admin_app))
    assert len(endpoints) >= 20
    for endpoint, method, url in endpoints:
        if method == "GET":
            response = anonymous.get(url)
            assert response.status_code == 302 and "/admin/login" in response.location, endpoint
        else:
            assert anonymous.post(url).status_code == 400, endpoint  # no CSRF token
            assert anonymous.post(url, data={"csrf_token": csrf_token(anonymous)}).status_code == 401, endpoint
            assert sam.post(url).status_code == 400, endpoint  # signed in, but no token
    changes = [e for e in endpoints if e[1] == "POST" and e[0] not in ("admin.check", "admin.console",
                                                                        "admin.logout")]
    for endpoint, _, url in changes:
        assert sam.post(url, data={"csrf_token": sam.token}).status_code == 403, endpoint


def test_sign_in_is_checked_rate_limited_and_audited(admin_app):
    client = admin_app.test_client()
    token = csrf_token(client)
    assert client.post("/admin/login", data={"name": "ada", "password": "wrong", "csrf_token": token}
                       ).status_code == 401
    assert client.post("/admin/login", data={"name": "ada", "password": "correct horse battery",
                                             "csrf_token": token}).status_code == 302
    token = csrf_token(client)  # signing in starts a new session
    for _ in range(3):
        assert client.post("/admin/login", data={"name": "ada", "password": "wrong", "csrf_token": token}
                           ).status_code == 401
    assert client.post("/admin/login", data={"name": "ada", "password": "wrong", "csrf_token": token}
                       ).status_code == 429
    assert [e["what"] for e in admin_app.extensions["ivr.workbench"].audit.entries()] == ["signed in"]


def test_a_published_version_serves_at_once_and_rollback_restores_the_one_before(admin_app, ada):
    workbench, catalog = admin_app.extensions["ivr.workbench"], admin_app.extensions["ivr.catalog"]
    failed = call(admin_app, "my bill is wrong", "no")  # guessed "paying a bill", denied, then silence
    assert failed.queue == "general" and failed.context["intent"] is None
    workbench.add_phrase("en-US", "billing_question", "my bill is wrong", by="ada")
    checked = workbench.check("en-US")
    assert checked.problems == [] and checked.figures["n"] == 4 and checked.served_figures["n"] == 4
    response = ada.post("/admin/grammars/en-US/publish", data={"csrf_token": ada.token, "note": "bill wrong",
                                                               "checked": checked.fingerprint})
    assert response.status_code == 302
    assert catalog.versions == {"en-US": 2}  # version 1 is the seed file it replaced
    record = call(admin_app, "my bill is wrong")
    assert record.queue == "billing" and record.context["intent"] == "billing_question"
    assert workbench.versions.version("en-US", 1)["by"] == "seed"
    version = workbench.versions.version("en-US", 2)
    assert version["by"] == "ada" and version["note"] == "bill wrong" and version["figures"]["accuracy"] is not None
    assert "+      - my bill is wrong" in workbench.diff("en-US", 2) and workbench.diff("en-US", 1) == ""
    page = ada.get("/admin/grammars/en-US/versions/2").get_data(as_text=True)
    assert "my bill is wrong" in page and "Regression figures when published" in page

    workbench.add_phrase("en-US", "internet_down", "the web is gone", by="ada")
    workbench.publish("en-US", by="ada", note="", checked=workbench.check("en-US").fingerprint)
    ada.post("/admin/grammars/en-US/versions/2/rollback", data={"csrf_token": ada.token})
    assert catalog.versions == {"en-US": 4}
    assert workbench.versions.version("en-US", 4)["rollback_of"] == 2
    assert "the web is gone" not in catalog.get("en-US").grammar.intents["internet_down"].phrases
    assert [e["what"] for e in workbench.audit.entries()][:3] == [
        "rolled back to version 2 (as 4)", "published version 3", "added a phrase to internet_down: 'the web is gone'"]
    workbench.rollback("en-US", 1, by="ada")
    assert call(admin_app, "my bill is wrong", "no").queue == "general"  # the seed file's grammar again


def test_the_publish_gate_refuses_a_broken_or_changed_draft_and_the_old_grammar_keeps_serving(admin_app, ada):
    workbench, catalog = admin_app.extensions["ivr.workbench"], admin_app.extensions["ivr.catalog"]
    good = workbench.draft("en-US")["text"]
    broken = good.replace("  pay_bill:\n", "  pay_bill:\n    route: {queue: nowhere}\n", 1)
    ada.post("/admin/grammars/en-US/draft", data={"csrf_token": ada.token, "text": broken})
    page = ada.post("/admin/grammars/en-US/check", data={"csrf_token": ada.token}).get_data(as_text=True)
    assert "It cannot be published" in page and "en-US draft:" in page and 'id="publish"' not in page
    verdict = workbench.check("en-US")
    response = ada.post("/admin/grammars/en-US/publish", data={"csrf_token": ada.token, "checked": verdict.fingerprint})
    assert response.status_code == 302 and workbench.versions.versions("en-US") == []
    assert "Not published" in ada.get("/admin/grammars/en-US").get_data(as_text=True)

    ada.post("/admin/grammars/en-US/draft", data={"csrf_token": ada.token, "text": good})
    page = ada.post("/admin/grammars/en-US/check", data={"csrf_token": ada.token}).get_data(as_text=True)
    assert 'id="publish"' in page and "out-of-scope threshold 0.30 (pinned in the grammar)" in page
    checked = workbench.check("en-US")
    workbench.add_phrase("en-US", "pay_bill", "a late edit", by="ada")  # after the check
    ada.post("/admin/grammars/en-US/publish", data={"csrf_token": ada.token, "checked": checked.fingerprint})
    assert workbench.versions.versions("en-US") == [] and catalog.versions == {}
    assert catalog.get("en-US").grammar.intents["pay_bill"].phrases[0] == "I want to pay my bill"


def test_the_check_warns_of_thin_intents_and_phrases_that_say_the_same_in_two_intents(admin_app):
    workbench = admin_app.extensions["ivr.workbench"]
    workbench.update("en-US", ("intents", "internet_down"), {"phrases": ["no internet", "internet gone", "offline"]},
                     by="ada", what="edited")
    workbench.add_phrase("en-US", "pay_bill", "I was charged twice again", by="ada")
    verdict = workbench.check("en-US")
    warnings = verdict.warnings
    assert verdict.problems == []
    assert "intent internet_down: only 3 phrases (at least 5 recommended)" in warnings
    assert any("similar phrases in pay_bill and billing_question" in w for w in warnings)
    assert not any("above the confirm threshold" in w for w in warnings)  # the shipped 0.30 leaves a confirm band
    workbench.update("en-US", ("thresholds",), {"out_of_scope": 0.8, "confirm": 0.6}, by="ada", what="edited")
    assert ("the out-of-scope threshold 0.80 is above the confirm threshold 0.60: doubtful answers are refused, never "
            "confirmed") in workbench.check("en-US").warnings


def test_every_form_of_the_grammar_page_changes_only_what_was_changed(admin_app, ada):
    workbench = admin_app.extensions["ivr.workbench"]
    page = ada.get("/admin/grammars/en-US").get_data(as_text=True)
    assert page.count("<form") >= 4 + 7 + 3
    seed = workbench.draft("en-US")["text"]

    def post(path: str, **form) -> list[str]:
        before = workbench.draft("en-US")["text"].splitlines()
        ada.post(f"/admin/grammars/en-US/edit/{path}", data={"csrf_token": ada.token, **form})
        return [line for line in workbench.draft("en-US")["text"].splitlines() if line not in before]

    intent = admin_app.extensions["ivr.catalog"].get("en-US").grammar.intents["pay_bill"]
    assert post("intent/pay_bill", label=intent.label, phrases="\n".join(intent.phrases), queue="billing",
                skills="payments, cards", confirm="always", dtmf="1", priority="2", slots=[]) == [
        "        - cards", "    confirm: always", "    priority: 2"]
    assert post("queue/billing", label="our billing team", hours="Mon-Fri 09:00-17:00", timezone="UTC",
                skills="", holidays="", overflow="general", overflow_after_s="120",
                max_wait_before_callback="300") == [
        "    hours: Mon-Fri 09:00-17:00", "    overflow: general", "    overflow_after_s: 120"]
    assert post("thresholds", out_of_scope="auto", confirm="0.7", disambiguate_margin="0.2") == [
        "  out_of_scope: auto"]
    assert post("out_of_scope", examples="what's the weather\nplay music") == [
        "  - what's the weather", "  - play music"]
    assert workbench.check("en-US").problems == []
    assert post("thresholds", out_of_scope="lots", confirm="0.7", disambiguate_margin="0.2") == [
        "  out_of_scope: lots"]
    assert any("thresholds.out_of_scope" in p for p in workbench.check("en-US").problems)
    assert workbench.draft("en-US")["text"] != seed
    assert ada.post("/admin/grammars/en-US/edit/nothing", data={"csrf_token": ada.token}).status_code == 404


def test_form_edits_keep_the_files_comments_and_order(admin_app):
    workbench = admin_app.extensions["ivr.workbench"]
    before = workbench.draft("en-US")["text"]
    workbench.update("en-US", ("prompts",), {"goodbye": "Bye now."}, by="ada", what="edited")
    after = workbench.draft("en-US")["text"]
    assert after.startswith("# a small test hotline\n")
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert changed == ["  goodbye: Bye now."]


def test_a_version_published_by_one_app_serves_on_another_sharing_its_redis(admin_app, settings, redis_client, clock,
                                                                              tmp_path):
    other = make_app(admin_app.config["IVR_SETTINGS"].replace(spool_dir=str(tmp_path / "other-spool")),
                     redis_client, clock)
    catalog = other.extensions["ivr.catalog"]
    installed, stopped = threading.Event(), threading.Event()

    def refresh():
        catalog.refresh()
        installed.set()

    GrammarVersions(other.extensions["ivr.store"].redis).listen(refresh, stopped)
    try:
        workbench = admin_app.extensions["ivr.workbench"]
        workbench.add_phrase("en-US", "billing_question", "my bill is wrong", by="ada")
        subscribed = redis_client.pubsub_numsub("ivr:grammar:published")
        assert subscribed  # the listener subscribes before publishing matters (else the poll would find it)
        workbench.publish("en-US", by="ada", note="", checked=workbench.check("en-US").fingerprint)
        while catalog.versions.get("en-US") != 2:  # the seed file (version 1), then the draft (version 2)
            assert installed.wait(30)
            installed.clear()
    finally:
        stopped.set()
    assert catalog.versions == {"en-US": 2}
    assert call(other, "my bill is wrong").queue == "billing"


def test_the_inbox_promotes_labels_marks_out_of_scope_and_dismisses(admin_app, ada):
    call(admin_app, "my bill is wrong", "no")
    call(admin_app, "sell me a boat", "order a pizza", "flibber flabber")
    inbox = admin_app.extensions["ivr.conversations"].inbox
    entries = {e["text"]: e for e in inbox.entries("en-US", now=admin_app.extensions["ivr.conversations"].clock())}
    assert entries["my bill is wrong"]["reasons"] == {"denied": 1}
    assert entries["flibber flabber"]["reasons"] == {"escalated": 1}  # the third miss: the caller went to a person
    page = ada.get("/admin/inbox?locale=en-US").get_data(as_text=True)
    assert "my bill is wrong" in page and "sell me a boat" in page

    response = ada.post(f"/admin/inbox/en-US/{entries['my bill is wrong']['id']}",
                        data={"csrf_token": ada.token, "action": "promote", "intent": "billing_question"})
    assert response.status_code == 302
    page = ada.get("/admin/inbox?locale=en-US").get_data(as_text=True)
    assert "Added “my bill is wrong” to billing_question in the draft. Regression accuracy" in page
    assert "my bill is wrong" not in page.split('id="inbox"')[1]
    workbench = admin_app.extensions["ivr.workbench"]
    assert "my bill is wrong" in workbench.understanding(workbench.draft("en-US")["text"], "draft").grammar.intents[
        "billing_question"].phrases
    ada.post(f"/admin/inbox/en-US/{entries['sell me a boat']['id']}",
             data={"csrf_token": ada.token, "action": "out_of_scope"})
    assert "sell me a boat" in workbench.draft("en-US")["text"]
    ada.post(f"/admin/inbox/en-US/{entries['order a pizza']['id']}",
             data={"csrf_token": ada.token, "action": "label", "intent": "pay_bill"})
    assert workbench.versions.labelled("en-US") == {"order a pizza": "pay_bill"}
    assert workbench.check("en-US").figures["n"] == 5
    assert [e["text"] for e in inbox.entries("en-US", now=admin_app.extensions["ivr.conversations"].clock())] == [
        "flibber flabber"]


def test_the_console_shows_the_ranking_and_the_next_move_of_the_draft_and_the_served_grammar(admin_app, ada):
    admin_app.extensions["ivr.workbench"].add_phrase("en-US", "billing_question", "my bill is wrong", by="ada")
    page = ada.post("/admin/console", data={"csrf_token": ada.token, "locale": "en-US",
                                            "utterance": "my bill is wrong"}).get_data(as_text=True)
    draft, served = page.split('class="card trial"')[1:]
    assert "billing_question" in draft and "transfer to queue billing (intent)" in draft
    assert "pay_bill" in served and "listen for yes_no" in served and "Just to check" in served


def test_a_wav_in_the_console_needs_a_model_and_says_so(admin_app, ada):
    import io

    from ivr.speech.audio import wav_bytes

    wav = wav_bytes(__import__("numpy").zeros(800, dtype="int16"))
    page = ada.post("/admin/console", data={"csrf_token": ada.token, "locale": "en-US",
                                            "audio": (io.BytesIO(wav), "hello.wav")},
                    content_type="multipart/form-data").get_data(as_text=True)
    assert "No Vosk model is configured" in page


def test_a_wav_in_the_console_is_recognised_then_tried_like_typed_words(admin_app, ada):
    import io

    import numpy as np

    from ivr.speech.audio import wav_bytes
    from ivr.speech.recognizer import ScriptedRecognizer

    heard = ScriptedRecognizer(["my internet is down"])
    admin_app.extensions["ivr.speech"].recognizer_for = lambda locale: heard
    wav = wav_bytes(np.zeros(16000, dtype="int16"), rate=16000)  # 1 s at 16 kHz: resampled to 8 kHz
    page = ada.post("/admin/console", data={"csrf_token": ada.token, "locale": "en-US",
                                            "audio": (io.BytesIO(wav), "caller.wav")},
                    content_type="multipart/form-data").get_data(as_text=True)
    assert "Heard: “my internet is down”" in page and "transfer to queue tech_support" in page
    assert heard.fed_bytes == 16000 and heard.started == ["intent"]
    page = ada.post("/admin/console", data={"csrf_token": ada.token, "locale": "en-US",
                                            "audio": (io.BytesIO(b"RIFF not a wav"), "x.wav")},
                    content_type="multipart/form-data").get_data(as_text=True)
    assert "not a PCM WAV file" in page


def test_grammar_export_and_import(admin_app, ada):
    exported = ada.get("/admin/grammars/en-US/export").get_data(as_text=True)
    assert exported.startswith("# a small test hotline")
    import io

    edited = exported.replace("Bye", "Bye").replace("# a small test hotline", "# imported")
    ada.post("/admin/grammars/en-US/draft", data={"csrf_token": ada.token, "file": (io.BytesIO(edited.encode()),
                                                                                     "hotline.yaml")},
             content_type="multipart/form-data")
    assert admin_app.extensions["ivr.workbench"].draft("en-US")["text"].startswith("# imported")
    assert admin_app.extensions["ivr.workbench"].audit.entries()[0]["what"] == "imported a grammar file"


def test_forgetting_a_caller_reports_what_went_and_is_audited(admin_app, ada):
    call(admin_app, "my internet is down")
    page = ada.post("/admin/privacy/forget", data={"csrf_token": ada.token, "number": "+15550100001"},
                    follow_redirects=True).get_data(as_text=True)
    assert "Deleted for +15550100001: 1 calls" in page
    entry = admin_app.extensions["ivr.workbench"].audit.entries()[0]
    assert entry["what"] == "forgot a caller" and entry["who"] == "ada" and "+15550100001" not in entry["detail"]
    assert "refused" not in ada.post("/admin/privacy/forget", data={"csrf_token": ada.token, "number": "12"},
                                     follow_redirects=True).get_data(as_text=True)


def test_analytics_and_csv_pages_read_the_events(admin_app, ada):
    call(admin_app, "my internet is down")
    call(admin_app, "agent")
    page = ada.get("/admin/analytics?days=7").get_data(as_text=True)
    assert 'data-metric="calls">2<' in page and "internet_down" in page
    csv_text = ada.get("/admin/analytics.csv?days=7&locale=en-US").get_data(as_text=True)
    assert "summary,,calls,2" in csv_text and "summary,,agent_requested_rate,0.5" in csv_text


@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_ivr_admins_adds_lists_and_sets_passwords(redis_client, role, monkeypatch, capsys):
    import io

    from ivr.cli import cmd_admins, main
    from ivr.store.admins import AdminAccounts

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    args = __import__("argparse").Namespace(admins_command="add", name="kim", role=role, password_stdin=True)
    assert cmd_admins(args, client=redis_client) == 0
    assert AdminAccounts(redis_client).admin("kim").role == role
    assert cmd_admins(__import__("argparse").Namespace(admins_command="list"), client=redis_client) == 0
    assert f"kim\t{role}" in capsys.readouterr().out
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["admins", "list"]) == 2  # the embedded store lives in the service: it says so
    assert "needs REDIS_URL" in capsys.readouterr().err


def test_classifier_cache_is_shared(admin_app):
    assert str(CLASSIFIER_CACHE) == admin_app.config["IVR_SETTINGS"].cache_dir


def test_signing_in_to_the_desk_keeps_the_admin_signed_in_in_the_same_browser(admin_app, ada):
    from ivr.store.agents import Agent
    from tests.web.conftest import ADMIN_PASSWORD, CHEAP_HASH

    admin_app.extensions["ivr.desk"].agents.save_agent(Agent("ada", "Ada", skills=("billing",),
                                                             password_hash=CHEAP_HASH))
    response = ada.post("/agent/login", data={"agent": "ada", "password": ADMIN_PASSWORD, "csrf_token": ada.token})
    assert response.status_code == 302
    assert ada.get("/agent/").status_code == 200 and ada.get("/admin/audit").status_code == 200
    ada.post("/admin/logout", data={"csrf_token": ada.token})
    assert ada.get("/agent/").status_code == 200 and ada.get("/admin/audit").status_code == 302


def test_a_draft_that_is_not_yaml_is_said_on_the_pages_and_loses_nothing(admin_app, ada):
    call(admin_app, "my bill is wrong", "no")
    ada.post("/admin/grammars/en-US/draft", data={"csrf_token": ada.token, "text": "intents: [unclosed"})
    inbox = ada.get("/admin/inbox?locale=en-US")
    assert inbox.status_code == 200 and "my bill is wrong" in inbox.get_data(as_text=True)
    entry = admin_app.extensions["ivr.conversations"].inbox.entries("en-US", now=admin_app.extensions[
        "ivr.conversations"].clock())[0]
    page = ada.post(f"/admin/inbox/en-US/{entry['id']}", data={"csrf_token": ada.token, "action": "promote",
                                                               "intent": "billing_question"},
                    follow_redirects=True).get_data(as_text=True)
    assert "the en-US draft is not valid YAML" in page and "my bill is wrong" in page  # still in the inbox
    page = ada.post("/admin/grammars/en-US/edit/thresholds", data={"csrf_token": ada.token, "confirm": "0.7"},
                    follow_redirects=True).get_data(as_text=True)
    assert "not valid YAML" in page and admin_app.extensions["ivr.workbench"].draft("en-US")["text"] == (
        "intents: [unclosed")


def test_the_admin_pages_say_so_when_the_store_is_down(admin_app, ada):
    import redis as redis_errors

    def down(*args, **kwargs):
        raise redis_errors.ConnectionError("refused")

    admin_app.extensions["ivr.store"].redis._client.hget = down  # every page reads the signed-in admin first
    response = ada.get("/admin/inbox")
    assert response.status_code == 503 and "The store is unavailable" in response.get_data(as_text=True)
