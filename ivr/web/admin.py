"""The admin pages (/admin/): analytics from the call events, the missed-utterance inbox with one-click promotion,
the grammar editor (draft, check, publish, versions, rollback), the test console, the regression set, privacy
requests and the audit log. Admins change things; supervisors see everything and use the console. Server-rendered,
CSRF on every form, rate-limited sign-in, every change in the audit log."""
from __future__ import annotations

import csv
import functools
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
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
    url_for,
)
from werkzeug.security import check_password_hash

from ivr import analytics
from ivr.admin import DraftError, GrammarWorkbench, StaleDraft
from ivr.grammar import GrammarError
from ivr.nlu.regression import NOT_HANDLED
from ivr.speech.audio import transcribe
from ivr.store.admins import AdminAccounts, AuditLog
from ivr.store.forget import forget_with_audit
from ivr.store.inbox import MissedUtterances
from ivr.web.forms import SIGN_IN_LIMIT, protect_forms

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates", static_folder="static",
               static_url_path="/static")
UPLOAD_BYTES = 2 * 1024 * 1024  # a grammar file or a short WAV; the webhooks keep their 64 kB limit
DAY = 86_400
PERIODS = {"1": "today and yesterday", "7": "last 7 days", "30": "last 30 days", "90": "last 90 days"}


@bp.before_request
def bounded_forms() -> None:
    request.max_content_length = UPLOAD_BYTES
    protect_forms()


def workbench() -> GrammarWorkbench:
    return current_app.extensions["ivr.workbench"]


def accounts() -> AdminAccounts:
    return AdminAccounts(current_app.extensions["ivr.store"].redis)


def audit() -> AuditLog:
    return workbench().audit


def inbox() -> MissedUtterances:
    return current_app.extensions["ivr.conversations"].inbox


def now() -> float:
    return current_app.extensions["ivr.conversations"].clock()


def signed_in(*, change: bool = False):
    """Pages redirect to the sign-in page; a supervisor asking to change something gets 403."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            admin = accounts().admin(session.get("admin", ""))
            if admin is None:
                if request.method == "GET":
                    return redirect(url_for("admin.login", next=request.path))
                return jsonify(error="sign in first"), 401
            if change and not admin.may_change:
                log.warning("admin: %s (%s) refused %s %s", admin.name, admin.role, request.method, request.path)
                abort(403)
            return view(admin.name, *args, **kwargs)

        return wrapper

    return decorate


def locale_arg() -> str:
    locales = workbench().locales()
    locale = request.values.get("locale") or current_app.config["IVR_SETTINGS"].locale
    return locale if locale in locales else locales[0]


@bp.context_processor
def common() -> dict:
    try:
        admin = accounts().admin(session.get("admin", "")) if session.get("admin") else None
        return {"me": admin, "locales": workbench().locales() if admin else []}
    except (redis.ConnectionError, redis.TimeoutError):  # the page says the store is down
        return {"me": None, "locales": []}


# --- sign-in ---------------------------------------------------------------------------------------------------
@bp.get("/login")
def login():
    return render_template("admin/login.html")


@bp.post("/login")
def login_post():  # rate-limited in init_app
    name, password = request.form.get("name", "").strip(), request.form.get("password", "")
    admin = accounts().admin(name)
    if admin is None or not check_password_hash(admin.password_hash, password):
        log.warning("admin sign-in refused for %r from %s", name[:40], request.remote_addr)
        flash("Unknown name or wrong password.")
        return render_template("admin/login.html"), 401
    session.pop("admin", None)  # the desk and the admin pages share the cookie: leave the other signed in
    session["admin"] = admin.name
    audit().record(admin.name, "signed in", request.remote_addr or "", now=now())
    target = request.args.get("next", "")
    return redirect(target if target.startswith("/admin/") else url_for("admin.analytics_page"))


@bp.post("/logout")
@signed_in()
def logout(me: str):
    session.pop("admin", None)
    return redirect(url_for("admin.login"))


@bp.get("/")
@signed_in()
def home(me: str):
    return redirect(url_for("admin.analytics_page"))


# --- analytics -------------------------------------------------------------------------------------------------
def period_report() -> tuple[analytics.Report, str, str]:
    days = request.args.get("days", "7")
    days = days if days in PERIODS else "7"
    locale = request.args.get("locale", "")
    end = (now() // DAY + 1) * DAY  # the end of today (UTC)
    start = end - int(days) * DAY
    store = current_app.extensions["ivr.store"]
    events = store.events_between(min(start, end - 2 * analytics.WEEK), end)
    return analytics.report(events, locale=locale or None, start=start, end=end), days, locale


@bp.get("/analytics")
@signed_in()
def analytics_page(me: str):
    report, days, locale = period_report()
    return render_template("admin/analytics.html", report=report, days=days, locale=locale, periods=PERIODS)


@bp.get("/analytics.csv")
@signed_in()
def analytics_csv(me: str):
    report, days, locale = period_report()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "metric", "value"])
    writer.writerows(report.rows())
    name = f"ivr-analytics-{locale or 'all'}-{days}d.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


# --- the inbox -------------------------------------------------------------------------------------------------
@bp.get("/inbox")
@signed_in()
def inbox_page(me: str):
    locale = locale_arg()
    try:
        intents = workbench().draft_grammar(locale).intents
    except GrammarError:  # a draft being mended: offer the intents in service
        intents = current_app.extensions["ivr.catalog"].get(locale).grammar.intents
    return render_template("admin/inbox.html", locale=locale, entries=inbox().entries(locale, now=now()),
                           intents=intents, ttl_days=inbox().ttl_s // DAY)


def inbox_entry(locale: str, entry_id: str) -> dict:
    entry = next((e for e in inbox().entries(locale, now=now()) if e["id"] == entry_id), None)
    if entry is None:
        abort(404)
    return entry


@bp.post("/inbox/<locale>/<entry_id>")
@signed_in(change=True)
def inbox_action(me: str, locale: str, entry_id: str):
    """Add to an intent's phrases (in the draft; the regression figures before and after are shown), label it for
    the regression set, mark it out of scope, or dismiss it."""
    entry, action, intent = inbox_entry(locale, entry_id), request.form.get("action"), request.form.get("intent", "")
    text = entry["text"]
    try:
        if action == "promote":
            before = workbench().check(locale).figures
            workbench().add_phrase(locale, intent, text, by=me)
            after = workbench().check(locale).figures
            flash(f"Added “{text}” to {intent} in the draft. Regression accuracy "
                  f"{figure(before)} → {figure(after)} (not published yet).")
        elif action == "label":
            known = set(current_app.extensions["ivr.catalog"].get(locale).grammar.intents) | {NOT_HANDLED}
            if intent not in known:
                abort(400)
            workbench().versions.label(locale, text, intent)
            audit().record(me, f"labelled {text!r} as {intent} (regression set)", locale, now=now())
            flash(f"“{text}” is now in the regression set as {intent}.")
        elif action == "out_of_scope":
            workbench().add_out_of_scope(locale, text, by=me)
            flash(f"“{text}” marked out of scope in the draft.")
        elif action != "dismiss":
            abort(400)
    except DraftError as exc:
        flash(str(exc))
        return redirect(url_for("admin.inbox_page", locale=locale))
    inbox().dismiss(locale, entry_id)
    if action == "dismiss":
        audit().record(me, f"dismissed {text!r} from the inbox", locale, now=now())
    return redirect(url_for("admin.inbox_page", locale=locale))


def figure(figures: dict | None) -> str:
    return "—" if not figures or figures.get("accuracy") is None else f"{figures['accuracy']:.1%}"


# --- grammars --------------------------------------------------------------------------------------------------
@bp.get("/grammars/<locale>")
@signed_in()
def grammar_page(me: str, locale: str):
    if locale not in workbench().locales():
        abort(404)
    draft = workbench().draft(locale)
    try:
        grammar = workbench().draft_grammar(locale)
        problems: list[str] = []
    except GrammarError as exc:
        grammar, problems = None, exc.problems
    number, _ = workbench().served(locale)
    return render_template("admin/grammar.html", locale=locale, draft=draft, grammar=grammar, problems=problems,
                           served=number, versions=workbench().versions.versions(locale),
                           errors=current_app.extensions["ivr.catalog"].errors.get(locale, []))


@bp.post("/grammars/<locale>/draft")
@signed_in(change=True)
def save_draft(me: str, locale: str):
    upload = request.files.get("file")
    text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("text", "")
    if not text.strip():
        flash("The draft cannot be empty.")
    else:
        workbench().save_draft(locale, text.replace("\r\n", "\n"), by=me,
                               what="imported a grammar file" if upload and upload.filename else "edited the YAML")
        flash("Draft saved. Check it to see the figures, then publish.")
    return redirect(url_for("admin.grammar_page", locale=locale))


@bp.post("/grammars/<locale>/discard")
@signed_in(change=True)
def discard_draft(me: str, locale: str):
    workbench().discard_draft(locale, by=me)
    flash("Draft discarded.")
    return redirect(url_for("admin.grammar_page", locale=locale))


def lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def words(name: str) -> list[str]:
    return [word.strip() for word in request.form.get(name, "").split(",") if word.strip()]


def numeric(name: str) -> int | float | str:
    """A form's number as a number; anything else as typed (the check names the field if it is wrong)."""
    text = request.form.get(name, "").strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def text(name: str) -> str:
    return request.form.get(name, "").strip()


Form = Callable[[str], tuple[tuple[str, ...], dict[str, Any]]]  # item name → (part of the grammar, its new fields)
FORMS: dict[str, Form] = {  # what each form of the grammar page sets
    "intent": lambda name: (("intents", name), {
        "label": text("label"), "phrases": lines("phrases"), "route.queue": text("queue"),
        "route.skills": words("skills"), "slots": request.form.getlist("slots"), "confirm": text("confirm"),
        "dtmf": text("dtmf"), "priority": numeric("priority") or None}),
    "queue": lambda name: (("queues", name), {
        "label": text("label"), "hours": text("hours"), "timezone": text("timezone"), "skills": words("skills"),
        "holidays": text("holidays"), "overflow": text("overflow"), "overflow_after_s": numeric("overflow_after_s"),
        "max_wait_before_callback": numeric("max_wait_before_callback")}),
    "thresholds": lambda name: (("thresholds",), {
        "out_of_scope": numeric("out_of_scope"), "confirm": numeric("confirm"),
        "disambiguate_margin": numeric("disambiguate_margin")}),
    "out_of_scope": lambda name: ((), {"out_of_scope_examples": lines("examples")}),
    "prompts": lambda name: (("prompts",), {key.removeprefix("prompt."): value.strip()
                                            for key, value in request.form.items() if key.startswith("prompt.")}),
}


def changed(locale: str, path: tuple[str, ...], fields: dict) -> dict:
    """Only the fields the admin changed: a form shows defaults the file does not spell out, and saving it must not
    write them in."""
    def part(node: object, key: str) -> object:
        return node.get(key) if isinstance(node, dict) else getattr(node, key, None)

    try:
        node: object = workbench().draft_grammar(locale)
    except GrammarError:
        return fields  # a draft that does not parse: write what the form says
    for key in path:
        node = part(node, key)
    out = {}
    for dotted, value in fields.items():
        current = node
        for key in dotted.split("."):
            current = part(current, key)
        if (current if current is not None else "") != (value if value is not None else ""):
            out[dotted] = value
    return out


@bp.post("/grammars/<locale>/edit/<form>", defaults={"name": ""})
@bp.post("/grammars/<locale>/edit/<form>/<name>")
@signed_in(change=True)
def edit(me: str, locale: str, form: str, name: str):
    """One form of the grammar page, saved in the draft."""
    if form not in FORMS:
        abort(404)
    path, fields = FORMS[form](name)
    try:
        fields = changed(locale, path, fields)
        workbench().update(locale, path, fields, by=me, what=f"edited {' '.join(path) or form}: {', '.join(fields)}")
        flash(f"Saved in the draft: {' '.join(path) or form}. Check the draft to see its effect.")
    except DraftError as exc:
        flash(str(exc))
    return redirect(url_for("admin.grammar_page", locale=locale) + f"#{form}-{name}".rstrip("-"))


@bp.post("/grammars/<locale>/check")
@signed_in()
def check(me: str, locale: str):
    verdict = workbench().check(locale)
    number, _ = workbench().served(locale)
    return render_template("admin/check.html", locale=locale, check=verdict, served=number,
                           changes=workbench().changes(locale, verdict.text))


@bp.post("/grammars/<locale>/publish")
@signed_in(change=True)
def publish(me: str, locale: str):
    try:
        number = workbench().publish(locale, by=me, note=request.form.get("note", "").strip()[:200],
                                     checked=request.form.get("checked", ""))
    except StaleDraft as exc:
        flash(str(exc))
        return redirect(url_for("admin.grammar_page", locale=locale))
    except GrammarError as exc:
        flash("Not published: " + "; ".join(exc.problems[:3]))
        return redirect(url_for("admin.grammar_page", locale=locale))
    flash(f"Published {locale} version {number}; every worker serves it within seconds.")
    return redirect(url_for("admin.grammar_page", locale=locale))


@bp.get("/grammars/<locale>/versions/<int:number>")
@signed_in()
def version_page(me: str, locale: str, number: int):
    record = workbench().versions.version(locale, number)
    if record is None:
        abort(404)
    return render_template("admin/version.html", locale=locale, record=record, diff=workbench().diff(locale, number),
                           served=workbench().versions.in_service(locale))


@bp.post("/grammars/<locale>/versions/<int:number>/rollback")
@signed_in(change=True)
def rollback(me: str, locale: str, number: int):
    try:
        new = workbench().rollback(locale, number, by=me)
        flash(f"Version {number} is back in service as version {new}.")
    except (LookupError, GrammarError) as exc:
        flash(f"Not rolled back: {exc}")
    return redirect(url_for("admin.grammar_page", locale=locale))


@bp.get("/grammars/<locale>/export")
@signed_in()
def export(me: str, locale: str):
    which = request.args.get("version", "draft")
    if which == "draft":
        text = workbench().draft(locale)["text"]
    else:
        record = workbench().versions.version(locale, int(which)) if which.isdigit() else None
        if record is None:
            abort(404)
        text = record["text"]
    return Response(text, mimetype="application/yaml",
                    headers={"Content-Disposition": f"attachment; filename={locale}-{which}.yaml"})


# --- test console and regression set ---------------------------------------------------------------------------
@bp.route("/console", methods=["GET", "POST"])
@signed_in()
def console(me: str):
    locale, trials, heard = locale_arg(), [], ""
    utterance = request.form.get("utterance", "").strip()[:500]
    upload = request.files.get("audio")
    if request.method == "POST" and upload and upload.filename:
        try:
            utterance = heard = recognise(upload.read(), locale)
        except ValueError as exc:
            flash(str(exc))
    if request.method == "POST" and utterance:
        for target in ("draft", "served"):
            try:
                trials.append(workbench().trial(locale, utterance, target))
            except GrammarError as exc:
                flash(f"{target}: " + "; ".join(exc.problems[:3]))
    return render_template("admin/console.html", locale=locale, utterance=utterance, trials=trials, heard=heard)


def recognise(wav: bytes, locale: str) -> str:
    """A short WAV recognised with the configured Vosk model (on-prem, as calls are)."""
    recognizer_for = current_app.extensions["ivr.speech"].recognizer_for
    if recognizer_for is None:
        raise ValueError("No Vosk model is configured (IVR_VOSK_MODEL): type the utterance instead.")
    return transcribe(recognizer_for(locale), wav)


@bp.get("/regression")
@signed_in()
def regression(me: str):
    locale = locale_arg()
    number, text = workbench().served(locale)
    figures = workbench().check(locale, text).figures
    return render_template("admin/regression.html", locale=locale, served=number, figures=figures,
                           labelled=workbench().versions.labelled(locale))


# --- privacy and audit -----------------------------------------------------------------------------------------
@bp.get("/privacy")
@signed_in()
def privacy(me: str):
    settings = current_app.config["IVR_SETTINGS"]
    retention = {"call state and transcript (IVR_CALL_TTL_S)": settings.call_ttl_s,
                 "context record for agents (IVR_CONTEXT_TTL_S)": settings.context_ttl_s,
                 "analytics events, redacted (IVR_EVENTS_TTL_S)": settings.events_ttl_s,
                 "missed utterances, redacted (IVR_INBOX_TTL_S)": settings.inbox_ttl_s}
    return render_template("admin/privacy.html", retention=retention)


@bp.post("/privacy/forget")
@signed_in(change=True)
def forget(me: str):
    number = request.form.get("number", "").strip()
    if not number.startswith("+") or not number[1:].isdigit():
        flash("Give the number in international form, e.g. +4930123456.")
        return redirect(url_for("admin.privacy"))
    deleted = forget_with_audit(current_app.extensions["ivr.store"].redis, number, by=me, now=now())
    flash(f"Deleted for {number}: " + (", ".join(f"{n} {what}" for what, n in deleted.items()) or "nothing was stored")
          + ".")
    return redirect(url_for("admin.privacy"))


@bp.get("/audit")
@signed_in()
def audit_page(me: str):
    return render_template("admin/audit.html", entries=audit().entries(500))


@bp.app_template_filter("when")
def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)) if at else "—"


@bp.errorhandler(redis.ConnectionError)  # StoreUnavailable (the open circuit) is one too
@bp.errorhandler(redis.TimeoutError)
def store_unavailable(error: Exception):
    """Redis is down: say so (the calls themselves go on to agents); nothing half-done is kept."""
    log.error("admin %s %s: the store is unavailable (%s)", request.method, request.path, error)
    return render_template("admin/unavailable.html"), 503


def init_app(app, limiter) -> None:
    app.register_blueprint(bp)
    app.view_functions["admin.login_post"] = limiter.limit(SIGN_IN_LIMIT)(login_post)
