"""`ivr agents`: the roster in the service's Redis, passwords hashed with a real KDF."""
import io

import pytest
from werkzeug.security import check_password_hash

from ivr import cli
from ivr.store.agents import AgentStore


@pytest.fixture
def run(redis_client, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: the test's client is used

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        monkeypatch.setattr(cli, "agent_store", lambda settings, client=None: AgentStore(redis_client))
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_add_list_set_password_and_remove(run, redis_client):
    code, out, _ = run("agents", "add", "alice", "--name", "Alice", "--skills", "billing,tech_support",
                       "--languages", "en,de", "--password-stdin", stdin="correct horse battery\n")
    assert code == 0 and "added alice" in out
    alice = AgentStore(redis_client).agent("alice")
    assert alice.skills == ("billing", "tech_support") and alice.languages == ("en", "de")
    assert alice.password_hash.startswith("scrypt:") and check_password_hash(alice.password_hash,
                                                                             "correct horse battery")
    assert "correct horse" not in redis_client.hget("ivr:agents", "alice")
    code, out, _ = run("agents", "list")
    assert "alice\tAlice\tskills=billing,tech_support\tlanguages=en,de\tclient:alice\toffline" in out
    assert run("agents", "set-password", "alice", "--password-stdin", stdin="another long secret\n")[0] == 0
    assert check_password_hash(AgentStore(redis_client).agent("alice").password_hash, "another long secret")
    assert run("agents", "remove", "alice")[0] == 0 and AgentStore(redis_client).agent("alice") is None


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (("agents", "add", "bob", "--password-stdin"), "short\n", "at least 10 characters"),
    (("agents", "remove", "nobody"), "", "no agent 'nobody'"),
    (("agents", "set-password", "nobody", "--password-stdin"), "long enough secret\n", "no agent 'nobody'"),
])
def test_mistakes_are_one_line_errors(run, argv, stdin, message):
    code, _, err = run(*argv, stdin=stdin)
    assert code == 2 and message in err and "Traceback" not in err


def test_without_redis_the_command_says_why(monkeypatch, capsys):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("IVR_REDIS_URL", raising=False)
    assert cli.main(["agents", "list"]) == 2
    assert "needs REDIS_URL" in capsys.readouterr().err
