"""The demo billing backend and the registry that runs backends by name."""
import pytest

from ivr.selfservice import ActionRegistry, registry_for
from ivr.selfservice.demo import DemoBilling, register_demo_actions, spoken_amount, spoken_date
from ivr.types import SelfServiceRequest, SelfServiceResult


def request(account: str, locale: str = "en-US") -> SelfServiceRequest:
    return SelfServiceRequest({"account_number": account}, "+15550100001", locale)


@pytest.fixture
def billing():
    return DemoBilling.from_file()


def test_balance_is_spoken_naturally(billing):
    result = billing.balance(request("12345678"))
    assert result.ok and "84 dollars and 20 cents, due on December 3" in result.text


def test_invoice_copy_is_sent_and_the_address_masked(billing):
    result = billing.invoice_copy(request("87654321", "de-DE"))
    assert billing.outbox == [{"to": "kim@example.de", "invoice": "2026-11-15"}]
    assert "k***@example.de" in result.text and "15. November" in result.text


def test_unknown_account_is_a_failed_result(billing):
    result = billing.balance(request("99999999"))
    assert not result.ok and "couldn't find" in result.text


@pytest.mark.parametrize(
    ("amount", "currency", "language", "spoken"),
    [(84.2, "USD", "en", "84 dollars and 20 cents"), (12.0, "EUR", "en", "12 euros"),
     (84.2, "EUR", "de", "84 Euro 20"), (5.0, "EUR", "de", "5 Euro")],
)
def test_demo_amounts_are_spoken_naturally(amount, currency, language, spoken):
    assert spoken_amount(amount, currency, language) == spoken
    assert spoken_date("2026-12-03", language) == ("3. Dezember" if language == "de" else "December 3")


def test_a_crashing_or_unknown_backend_is_a_failed_result_not_an_exception():
    registry = ActionRegistry()

    def broken(request):
        raise TimeoutError("billing backend down")

    registry.register("account_balance", broken)
    assert not registry.run("account_balance", request("12345678")).ok
    assert not registry.run("nope", request("12345678")).ok


def test_the_demo_backend_is_registered_only_when_configured(billing):
    assert registry_for([]).names() == set()
    assert registry_for(["demo"]).names() == {"account_balance", "send_invoice_copy"}
    with pytest.raises(ValueError, match="unknown self-service backend 'sap'"):
        registry_for(["sap"])
    registry = ActionRegistry()
    register_demo_actions(registry, billing)
    assert registry.names() == {"account_balance", "send_invoice_copy"}


def register_test_backend(registry):
    """A backend as an operator would ship one: a module function that registers actions."""
    registry.register("account_balance", lambda request: SelfServiceResult("Your balance is 5 dollars."))


def test_an_operators_own_backend_plugs_in_by_module_and_function():
    registry = registry_for(["tests.selfservice.test_demo:register_test_backend"])
    assert registry.run("account_balance", request("12345678")).text == "Your balance is 5 dollars."
    with pytest.raises(ValueError, match="cannot be loaded"):
        registry_for(["tests.selfservice.test_demo:nothing_here"])
    with pytest.raises(ValueError, match="cannot be loaded"):
        registry_for(["no_such_module:register"])
