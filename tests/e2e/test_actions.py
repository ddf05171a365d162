"""Every editor action the server advertises runs, end to end (one catalog: actions.py).

The catalog comes back in ``initialize`` (``capabilities.experimental.vllmCompanion.actions``), its
commands in ``executeCommandProvider``; a client that can ask for an instruction gets every action
as a code action on a selection, and each one's command is executed as the editor would.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import as_dict, client_capabilities_for, open_doc, options, raw_request, session, wait_for
from vllm_companion.actions import ACTIONS


def prompting_client() -> types.ClientCapabilities:
    caps = client_capabilities_for("visual-studio-code")
    caps.experimental = {"vllmCompanion": {"prompts": True}}
    return caps


async def test_every_advertised_action_runs(backend: FakeBackend) -> None:
    def reply(body: dict[str, Any]) -> Reply:
        return Reply(chunks=["```python\nx = 10\ny = 20\n```"])

    backend.default = reply
    async with session(options(backend.url), capabilities=prompting_client()) as client:
        caps = client.init_result.capabilities  # type: ignore[attr-defined]
        advertised = caps.experimental["vllmCompanion"]["actions"]
        assert [a["command"] for a in advertised] == [a.command for a in ACTIONS]
        assert set(caps.execute_command_provider.commands) >= {a.command for a in ACTIONS}
        uri, _ = open_doc(client, "x = 1\ny = 2\n█")
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 5}}
        params = {"textDocument": {"uri": uri}, "range": rng, "context": {"diagnostics": []}}
        offered = as_dict(await raw_request(client, types.TEXT_DOCUMENT_CODE_ACTION, params))
        assert [a["command"]["command"] for a in offered] == [a.command for a in ACTIONS]
        applied: list[Any] = []
        client.feature(types.WORKSPACE_APPLY_EDIT)(lambda p: applied.append(p) or types.ApplyWorkspaceEditResult(True))
        for action, code_action in zip(ACTIONS, offered, strict=True):
            arguments = list(code_action["command"]["arguments"])
            if action.instruction is None:
                arguments[2] = "rename x to ten"  # what the client asked the user (actions.py ``arguments``)
            result = as_dict(await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=action.command, arguments=arguments)))
            assert result["content"], action.command
            if action.mode == "edit":
                assert result["applied"] is True, action.command
            else:
                await wait_for(lambda: any("x = 10" in m.message for m in client.messages))
    prompts = [r.body["messages"][-1]["content"] for r in backend.generation_requests()]
    assert len(prompts) == len(ACTIONS) and all("x = 1\ny = 2" in p for p in prompts)
    assert "rename x to ten" in prompts[-1]
    assert len(applied) == sum(a.mode == "edit" for a in ACTIONS)


async def test_an_action_missing_its_instruction_says_so(backend: FakeBackend) -> None:
    async with session(options(backend.url)) as client:
        uri, _ = open_doc(client, "x = 1\n█")
        rng = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}
        try:
            await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="vllmCompanion.editWithInstruction", arguments=[uri, rng]))
        except Exception as exc:
            assert "instruction" in str(exc)
        else:
            raise AssertionError("accepted without an instruction")
