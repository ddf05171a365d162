"""When the model is asked for a next edit (nextedit/asking.py): the decision table, and the
setting a repository may only switch off (settings_trust.py)."""

from __future__ import annotations

import pytest

from vllm_companion.config import Config
from vllm_companion.nextedit.asking import CPU_GENERIC, decide
from vllm_companion.nextedit.formats import BY_NAME
from vllm_companion.settings_trust import from_workspace


@pytest.mark.parametrize(
    ("setting", "family", "launched", "device", "ask"),
    [
        ("off", "sweep", False, None, False),  # off wins over everything
        ("off", "generic", True, "cuda", False),
        ("on", "generic", True, "cpu", True),  # on asks even the CPU engine
        ("auto", "sweep", True, "cpu", True),  # a trained family is asked wherever it runs
        ("auto", "zeta", True, "cpu", True),
        ("auto", "zeta2", True, None, True),
        ("auto", "instinct", False, None, True),
        ("auto", "generic", False, None, True),  # an endpoint the user attached
        ("auto", "generic", True, "cuda", True),  # the launched GPU engine
        ("auto", "generic", True, "cpu", False),  # the generic prompt on the launched CPU engine
        ("auto", "generic", True, None, False),  # launched, device not known yet
    ],
)
def test_decision_table(setting: str, family: str, launched: bool, device: str | None, ask: bool) -> None:
    assert decide(setting, family, launched, device).ask is ask


def test_every_trained_family_is_asked_and_the_cpu_refusal_says_why() -> None:
    for name in BY_NAME:
        assert decide("auto", name, True, "cpu").ask is (name != "generic")
    why = decide("auto", "generic", True, "cpu").why
    assert why == CPU_GENERIC and "docs/performance.md" in why and "nextEdit.model" in why


@pytest.mark.parametrize(("user", "workspace", "kept"),
                         [("auto", "off", "off"), ("auto", "on", "auto"), ("off", "on", "off"), ("off", "auto", "off"),
                          ("on", "off", "off"), ("on", "auto", "on")])
def test_a_workspace_may_only_switch_the_model_off(user: str, workspace: str, kept: str) -> None:
    mine = Config.model_validate({"nextEdit": {"model": user}})
    out, ignored, problems = from_workspace({"nextEdit": {"model": workspace}}, mine)
    assert out["nextEdit"]["model"] == kept and not ignored and not problems


def test_the_setting_is_checked() -> None:
    assert Config().nextEdit.model == "auto"
    with pytest.raises(ValueError):
        Config.model_validate({"nextEdit": {"model": "sometimes"}})
