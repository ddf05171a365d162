"""Context beyond the file, end to end over stdio: a completion in file A carries a snippet of
open file B, a definition that A imports from file C (on disk, not open) and B's recent edit, in
the family's own multi-file form; a family without file tokens gets them as comments."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from tests.fake_backend import FakeBackend, Reply
from tests.lsp_session import inline, options, session, split_cursor


def open_at(client, path: Path, marked: str) -> tuple[str, types.Position]:  # type: ignore[no-untyped-def]
    text, pos = split_cursor(marked)
    item = types.TextDocumentItem(uri=path.as_uri(), language_id="python", version=1, text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(item))
    return path.as_uri(), pos


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "pricing.py").write_text(
        "def apply_discount(price: float, percent: int) -> float:\n"
        '    """The price after a percentage discount."""\n'
        "    return price * (100 - percent) / 100\n"
    )
    return tmp_path


B_TEXT = "".join(f"# filler line {i}\n" for i in range(40)) + (
    "def cart_total(cart_items, tax_rate):\n    return sum(i.price for i in cart_items) * (1 + tax_rate)\n"
)
A_TEXT = "from shop.pricing import apply_discount\n\ndef checkout(cart_items, tax_rate):\n    total = █\n"


async def test_completion_in_a_carries_open_b_imported_c_and_recent_edits(backend: FakeBackend, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    backend.default = Reply(chunks=["cart_total(cart_items, tax_rate)"])
    sources = ["imports", "open-files", "recent-edits"]
    async with session(options(backend.url, contextSources=sources), workspace=ws.as_uri()) as client:
        b_uri, _ = open_at(client, ws / "cart.py", B_TEXT + "█")
        edit = types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(5, 0), end=types.Position(5, 0)), text="RECENTLY_EDITED = True\n"
        )
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=b_uri, version=2), content_changes=[edit]))
        uri, pos = open_at(client, ws / "checkout.py", A_TEXT)
        assert await inline(client, uri, pos) == "cart_total(cart_items, tax_rate)"
    prompt = backend.generation_requests()[-1].body["prompt"]
    head, _, current = prompt.partition("<|file_sep|>checkout.py\n")
    assert head.startswith("<|repo_name|>workspace\n")
    assert "<|file_sep|>shop/pricing.py\ndef apply_discount(price: float, percent: int) -> float:" in head
    assert "return price * (100 - percent)" not in head  # signatures, not bodies
    assert "<|file_sep|>cart.py\n" in head and "def cart_total(cart_items, tax_rate):" in head
    assert "RECENTLY_EDITED = True" in head
    assert current.startswith("<|fim_prefix|>from shop.pricing import apply_discount")


async def test_a_family_without_file_tokens_gets_commented_snippets(
    backend: FakeBackend, tmp_path: Path
) -> None:
    ws = workspace(tmp_path)
    backend.model = "deepseek-ai/deepseek-coder-1.3b-base"
    backend.default = Reply(chunks=["1"])
    async with session(options(backend.url, contextSources=["imports"]), workspace=ws.as_uri()) as client:
        uri, pos = open_at(client, ws / "checkout.py", A_TEXT)
        assert await inline(client, uri, pos) == "1"
    off = options(backend.url, contextSources=["imports"], commentedContext=False)
    async with session(off, workspace=ws.as_uri()) as client:
        uri, pos = open_at(client, ws / "checkout.py", A_TEXT)
        assert await inline(client, uri, pos) == "1"
    assert backend.generation_requests()[-1].body["prompt"].startswith("<｜fim▁begin｜>from shop.pricing")
    prompt = backend.generation_requests()[-2].body["prompt"]
    assert prompt.startswith(
        "<｜fim▁begin｜># Compare this snippet from shop/pricing.py:\n"
        "# def apply_discount(price: float, percent: int) -> float:\n"
    )
    assert "\nfrom shop.pricing import apply_discount\n" in prompt


async def test_context_sources_can_be_switched_off(backend: FakeBackend, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    backend.default = Reply(chunks=["1"])
    async with session(options(backend.url, contextSources=[]), workspace=ws.as_uri()) as client:
        uri, pos = open_at(client, ws / "checkout.py", A_TEXT)
        assert await inline(client, uri, pos) == "1"
    assert backend.generation_requests()[-1].body["prompt"].startswith("<|fim_prefix|>from shop.pricing")
