"""The agent desk: sign in, go available, see the queues you serve, get a screen pop pushed (Server-Sent Events fed
by Redis pub/sub, so any worker serves any agent) the moment your phone rings, wrap up. Server-rendered pages, a
little JavaScript, every asset served by the app. CSRF on every form; sign-in is rate-limited."""
from __future__ import annotations

import functools
import logging
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from werkzeug.security import check_password_hash

from ivr.desk import AgentDesk
from ivr.web.forms import SIGN_IN_LIMIT, protect_forms

log = logging.getLogger(__name__)
bp = Blueprint("desk", __name__, url_prefix="/agent", template_folder="templates", static_folder="static",
               static_url_path="/static")
bp.before_request(protect_forms)
DISPOSITIONS = ("resolved", "follow_up", "escalated", "wrong_department", "no_answer_needed")
HEARTBEAT_S = 15.0


def desk() -> AgentDesk:
    return current_app.extensions["ivr.desk"]


def signed_in(view):
    """Pages redirect to the sign-in page; JSON and event endpoints answer 401."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        agent_id = session.get("agent")
        if not agent_id or desk().agents.agent(agent_id) is None:
            if request.accept_mimetypes.best == "text/html" and request.method == "GET":
                return redirect(url_for("desk.login", next=request.path))
            return jsonify(error="sign in first"), 401
        return view(agent_id, *args, **kwargs)

    return wrapper


@bp.get("/login")
def login():
    return render_template("desk/login.html")


@bp.post("/login")
def login_post():  # rate-limited in init_app
    agent_id, password = request.form.get("agent", "").strip(), request.form.get("password", "")
    agent = desk().agents.agent(agent_id)
    if agent is None or not agent.password_hash or not check_password_hash(agent.password_hash, password):
        log.warning("desk sign-in refused for %r from %s", agent_id[:40], request.remote_addr)
        flash("Unknown agent or wrong password.")
        return render_template("desk/login.html"), 401
    session.pop("agent", None)  # the desk and the admin pages share the cookie: leave the other signed in
    session["agent"] = agent.id
    log.info("desk: %s signed in", agent.id)
    target = request.args.get("next", "")
    return redirect(target if target.startswith("/agent/") else url_for("desk.home"))


@bp.post("/logout")
@signed_in
def logout(agent_id: str):
    try:
        desk().set_unavailable(agent_id)
    except ValueError:
        pass  # on a call: the leg ends on its own
    session.pop("agent", None)
    return redirect(url_for("desk.login"))


@bp.get("/")
@signed_in
def home(agent_id: str):
    settings = current_app.config["IVR_SETTINGS"]
    phone_ready = all((settings.twilio_account_sid, settings.twilio_api_key, settings.twilio_api_secret,
                       settings.twilio_twiml_app_sid))
    colleagues = [agent for agent in desk().agents.agents() if agent.id != agent_id]
    return render_template("desk/desk.html", agent=desk().agents.agent(agent_id),
                           presence=desk().agents.presence(agent_id), phone_ready=phone_ready,
                           dispositions=DISPOSITIONS, intents=intents(), colleagues=colleagues,
                           queues=desk().conversations.grammar(None).queues)


@bp.post("/state")
@signed_in
def change_state(agent_id: str):
    """Go available (and take the caller waiting longest who fits) or step away."""
    wanted = request.form.get("state")
    if wanted == "available":
        desk().set_available(agent_id)
    elif wanted == "offline":
        try:
            desk().set_unavailable(agent_id)
        except ValueError as exc:
            return jsonify(error=str(exc)), 409
    else:
        return jsonify(error="state is available or offline"), 400
    return jsonify(desk().agents.presence(agent_id))


@bp.get("/queues")
@signed_in
def queues(agent_id: str):
    """Callers waiting in the queues this agent serves: time waiting, intent, language."""
    agent, now, rows = desk().agents.agent(agent_id), desk().clock(), []
    for waiting in desk().agents.all_waiting():
        if agent and agent.fits(waiting.skills, waiting.locale[:2]):
            context = desk().conversations.context(waiting.call)
            rows.append({"queue": waiting.queue, "waiting_s": round(now - waiting.at), "locale": waiting.locale,
                         "intent": context.intent_label if context else None})
    return jsonify(rows)


@bp.get("/calls/<call>")
@signed_in
def screen_pop(agent_id: str, call: str):
    """The screen pop: only for a call that was offered to this agent."""
    pop = desk().screen_pop(agent_id, call)
    if pop is None:
        log.warning("desk: %s asked for call %s, which was never offered to them", agent_id, call)
        abort(403)
    return jsonify(pop)


@bp.post("/calls/<call>/wrap-up")
@signed_in
def wrap_up(agent_id: str, call: str):
    if not desk().agents.was_assigned(agent_id, call):
        abort(403)
    disposition = request.form.get("disposition", "")
    if disposition not in DISPOSITIONS:
        return jsonify(error=f"disposition is one of {', '.join(DISPOSITIONS)}"), 400
    right_intent = request.form.get("right_intent") or None
    if right_intent is not None and right_intent not in intents():
        return jsonify(error=f"unknown intent {right_intent!r}"), 400
    desk().wrap_up(agent_id, call, disposition=disposition, note=request.form.get("note", "").strip()[:2000],
                   right_intent=right_intent)
    return jsonify(desk().agents.presence(agent_id))


@bp.post("/calls/<call>/transfer")
@signed_in
def transfer(agent_id: str, call: str):
    """To a colleague (warm: the caller holds while you talk to them) or to a queue (cold). The note travels."""
    kind, _, target = request.form.get("target", "").partition(":")
    note, locale = request.form.get("note", ""), call_locale(call)
    try:
        if kind == "agent" and target != agent_id:
            if not desk().transfer_to_agent(agent_id, call, to_agent=target, locale=locale, note=note):
                return jsonify(error=f"{target} is not free right now"), 409
            return jsonify(status="ringing", agent=target)
        if kind == "queue" and target in desk().conversations.grammar(locale).queues:
            desk().transfer_to_queue(agent_id, call, queue=target, locale=locale, note=note)
            return jsonify(status="transferred", queue=target)
    except PermissionError:
        abort(403)
    return jsonify(error="target is agent:<id> or queue:<name>"), 400


@bp.post("/calls/<call>/transfer/<decision>")
@signed_in
def transfer_decision(agent_id: str, call: str, decision: str):
    """After talking to the colleague: complete (they keep the caller, you leave) or cancel (you keep them)."""
    try:
        if decision == "complete":
            return jsonify(status="transferred", agent=desk().complete_transfer(agent_id, call))
        if decision == "cancel":
            desk().cancel_transfer(agent_id, call)
            return jsonify(status="cancelled")
    except PermissionError:
        abort(403)
    except LookupError as exc:
        return jsonify(error=str(exc)), 409
    abort(404)


def call_locale(call: str) -> str:
    context = desk().conversations.context(call)
    return context.locale if context else desk().conversations.grammar(None).locale


@bp.get("/events")
@signed_in
def events(agent_id: str):
    """Server-Sent Events for this agent's desk: ringing, connected, ended, missed, caller_gone."""
    subscription = desk().agents.subscribe(agent_id)

    def stream():
        try:
            yield "retry: 2000\n\n"
            last = time.monotonic()
            while True:
                message = subscription.get_message(timeout=1.0)
                if message and message.get("type") == "message":
                    yield f"data: {message['data']}\n\n"
                elif time.monotonic() - last > HEARTBEAT_S:
                    yield ": heartbeat\n\n"
                    last = time.monotonic()
        finally:
            subscription.close()

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.get("/token")
@signed_in
def token(agent_id: str):
    """An access token for the browser phone (identity = the agent id, so `client:<id>` rings this desk)."""
    settings = current_app.config["IVR_SETTINGS"]
    needed = {"TWILIO_ACCOUNT_SID": settings.twilio_account_sid, "TWILIO_API_KEY": settings.twilio_api_key,
              "TWILIO_API_SECRET": settings.twilio_api_secret, "TWILIO_TWIML_APP_SID": settings.twilio_twiml_app_sid}
    missing = [name for name, value in needed.items() if not value]
    if missing:
        return jsonify(error=f"the browser phone is not configured: set {', '.join(missing)}"), 503
    access = AccessToken(settings.twilio_account_sid, settings.twilio_api_key, settings.twilio_api_secret,
                         identity=agent_id, ttl=3600)
    access.add_grant(VoiceGrant(outgoing_application_sid=settings.twilio_twiml_app_sid, incoming_allow=True))
    return jsonify(token=access.to_jwt(), identity=agent_id, ttl=3600)


def intents() -> dict[str, str]:
    """Intent → label in the default locale, for the wrap-up's "the right intent was …"."""
    grammar = desk().conversations.grammar(None)
    return {name: intent.label for name, intent in grammar.intents.items()}


def init_app(app, limiter) -> None:
    app.register_blueprint(bp)
    app.view_functions["desk.login_post"] = limiter.limit(SIGN_IN_LIMIT)(login_post)  # one limiter per app
