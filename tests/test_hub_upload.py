"""The check every upload runs first: offline or without a token, it refuses with the uploader's own error, naming
what is missing and how to provide it."""

import huggingface_hub
import pytest

from hf_robattr.hub import HubPushError
from hf_robattr.hub_upload import HubUploadError, upload_token
from hf_robattr.metrics import MetricSpaceError


def test_offline_is_refused_naming_the_setting(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubPushError) as refused:
        upload_token("hf_x", "to org/name", error=HubPushError, retry="Retry later.")
    assert str(refused.value) == "Cannot push to org/name: HF_HUB_OFFLINE is set. Unset it to upload. Retry later."


def test_no_token_is_refused_naming_the_ways_to_give_one(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(MetricSpaceError) as refused:
        upload_token(None, "the metric Space org/name", error=MetricSpaceError)
    message = str(refused.value)
    assert message.startswith("Cannot push the metric Space org/name: no Hugging Face token.")
    assert "HF_TOKEN" in message and "`token=`" in message and "hf auth login" in message
    with pytest.raises(HubUploadError, match="no Hugging Face token"):  # the default error
        upload_token("", "to org/name")


def test_the_given_token_else_the_stored_one(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_stored")
    assert upload_token("hf_given", "to org/name") == "hf_given"
    assert upload_token(None, "to org/name") == "hf_stored"


def test_every_uploader_error_is_an_upload_error():
    assert issubclass(HubPushError, HubUploadError) and issubclass(MetricSpaceError, HubUploadError)
