"""The per-call stream token: issued with the <Stream>, valid for its CallSid until it expires."""
from ivr.telephony.stream_identity import token_is_valid, token_parameters


def test_the_token_is_valid_for_its_call_until_it_expires():
    parameters = token_parameters("CA1", key="secret", now=1000)
    assert token_is_valid("CA1", parameters, key="secret", now=1059)
    assert not token_is_valid("CA1", parameters, key="secret", now=1061)
    assert not token_is_valid("CA2", parameters, key="secret", now=1000)
    assert not token_is_valid("CA1", parameters, key="other", now=1000)
    assert not token_is_valid("CA1", {**parameters, "expires": "99999"}, key="secret", now=1000)
    assert not token_is_valid("CA1", {"expires": "soon"}, key="secret", now=1000)
