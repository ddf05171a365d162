"""pygls protocol with two fixes: every request gets an answer, and our own document store.

1. pygls 2.1 drops a request whose params fail to parse (the client then waits forever) and
   says nothing for a body that is not JSON. Here the first is answered with InvalidParams
   (-32602, naming the field: "invalid value @ $.params.position") and the second with a
   ParseError (framing.py reads and parses the messages: sizes, depth, non-finite numbers).
   pygls also leaves unanswered, or answers oddly, requests the LSP says to refuse; each gets an
   error here: an id that is not a string or an integer (``1.5``, ``true``, ``null``, ``{}``;
   pygls answered some under that id and dropped the unhashable ones) is Invalid Request, id
   null; a notification's method sent with an id (``$/cancelRequest`` as a request) is Invalid
   Request and not run; a request after ``shutdown`` is Invalid Request (LSP 3.17, ``shutdown``:
   pygls dropped it, the client waited forever); a request before ``initialize`` is -32002
   ServerNotInitialized, and a notification then is dropped, ``exit`` aside (LSP 3.17,
   ``initialize``).
2. No error answer carries a traceback (pygls puts one in ``data`` for internal errors): it is
   logged on our side, and the editor gets the one-line message.
3. Text synchronisation updates ``server.documents`` (incremental, line-based) instead of pygls's
   workspace, which re-splits whole files on every keystroke.
4. A message lsprotocol has no type for (our ``vllmCompanion/*`` methods, Copilot's and every
   unknown method; a response no typed request waits for) keeps its params or result as parsed:
   plain dicts and lists (``untyped``). pygls rebuilt them with a JSON round trip into a new
   namedtuple class per object (``pygls/protocol/__init__.py`` ``_dict_to_object``, about 170 us
   an object), on the event loop: a chat of 10,000 messages held it 1.7 s, a 10 MB one 0.1-0.3 s,
   64 MiB of small objects minutes (tests/adversarial/test_protocol.py). The handlers read dicts
   (lsp/chat.py ``parse``, lsp/telemetry.py ``_field``, lsp/models.py ``_get``) and bound what they
   take at the edge (lsp/chat.py ``MAX_MESSAGES``).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeGuard

from cattrs import transform_error
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage, LanguageServerProtocol
from pygls.protocol.json_rpc import RPCRequest
from pygls.protocol.language_server import lsp_method

from ..actions import catalog
from ..documents import Change
from . import nextedit
from .telemetry import typed

if TYPE_CHECKING:
    from .server import CompanionServer

log = logging.getLogger(__name__)
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602  # JSON-RPC 2.0 section 5.1
SERVER_NOT_INITIALIZED = -32002  # LSP 3.17, ErrorCodes


def valid_id(value: Any) -> TypeGuard[int | str]:
    """A JSON-RPC id we can answer under: a string or an integer (not a bool, not a float)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


_REQUEST_TYPES: dict[type, bool] = {}  # message class -> whether it is an RPCRequest


def is_request(message: Any) -> bool:
    """``isinstance(message, RPCRequest)``, decided once per message class: pygls's ``RPCRequest``
    is a runtime ``Protocol``, whose check walks its members on every call (13 us on Python
    3.11; twice per message here, every keystroke's ``didChange`` included: issue 21's overhead
    measure, docs/performance.md). Every instance of a class pygls structures a message into
    (lsprotocol's and pygls's attrs classes, or the raw ``dict``) has the same fields."""
    kind = type(message)
    known = _REQUEST_TYPES.get(kind)
    if known is None:
        known = _REQUEST_TYPES[kind] = isinstance(message, RPCRequest)
    return known


class _Answered:
    """Stands in for a request that was already answered with an error; pygls ignores it."""

    jsonrpc = "answered"


class CompanionProtocol(LanguageServerProtocol):
    _server: CompanionServer
    _initialize_seen = False

    def structure_message(self, data: dict[str, Any]) -> Any:
        request = "id" in data and "method" in data
        if request and not valid_id(data["id"]):
            self.answer_error(None, INVALID_REQUEST, "Invalid Request: the id must be a string or an integer")
            return _Answered()
        try:
            message = self.untyped(data) or super().structure_message(data)
        except JsonRpcException as exc:
            if request:
                self._answer_unstructured(data, exc)
                return _Answered()
            raise
        if request and not is_request(message):
            method = str(data["method"])[:100]
            message = f"Invalid Request: {method!r} with an id is not a request (a notification, or a result)"
            self.answer_error(data["id"], INVALID_REQUEST, message)
            return _Answered()
        return message

    def untyped(self, data: dict[str, Any]) -> Any:
        """The message as pygls's generic classes with its params or result as parsed, when
        lsprotocol has no type for it (module doc, 4); None for pygls to structure (typed ones,
        errors, a method that is no string)."""
        version, msg_id = data.get("jsonrpc", ""), data.get("id", None)
        if "method" in data:
            method = data["method"]
            if not isinstance(method, str) or self.get_message_type(method) is not None:
                return None
            if "id" in data:
                return JsonRPCRequestMessage(id=data["id"], method=method, jsonrpc=version, params=data.get("params"))
            return JsonRPCNotification(method=method, jsonrpc=version, params=data.get("params"))
        if "error" in data or not valid_id(msg_id) or self._result_types.get(msg_id) is not None:
            return None
        self._result_types.pop(msg_id, None)  # what pygls does with the type it looks up
        return JsonRPCResponseMessage(id=msg_id, jsonrpc=version, result=data.get("result"))

    def handle_message(self, message: Any) -> None:
        """Refuse what the LSP lifecycle forbids, then pygls's dispatch."""
        method = getattr(message, "method", None)
        request = is_request(message)
        if method == types.INITIALIZE:
            self._initialize_seen = True
        elif not self._initialize_seen and method is not None and method != types.EXIT:
            if request:
                self.answer_error(message.id, SERVER_NOT_INITIALIZED, f"the server is not initialized: {method!r}")
            return
        if self._shutdown and request and method != types.EXIT:
            self.answer_error(message.id, INVALID_REQUEST, f"Invalid Request: the server is shutting down: {method!r}")
            return
        super().handle_message(message)

    def _answer_unstructured(self, data: dict[str, Any], exc: JsonRpcException) -> None:
        """A request pygls could not structure: its params are wrong (which ones, from cattrs)."""
        try:
            where = "; ".join(transform_error(exc.__cause__)[:3]) if exc.__cause__ is not None else ""
        except Exception:  # transform_error takes cattrs's errors only
            where = ""
        message = f"invalid params for {str(data['method'])[:100]!r}" + (f": {where}" if where else "")
        self.answer_error(data["id"], INVALID_PARAMS, message)

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        if error is not None and (error.data is not None or len(error.message) > 500):
            error = types.ResponseError(code=error.code, message=error.message[:500])
        super()._send_response(msg_id, result, error)

    def answer_parse_error(self, detail: str) -> None:
        self.answer_error(None, PARSE_ERROR, f"Parse error: {detail[:200]}")

    def answer_error(self, msg_id: int | str | None, code: int, message: str) -> None:
        """An error answer sent as a plain dict: pygls's converter would drop ``"id": null``."""
        error = {"code": code, "message": message[:500]}
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": error})

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams) -> Generator[Any, Any, types.InitializeResult]:
        """pygls's initialize, plus the action catalog in ``capabilities.experimental``."""
        result: types.InitializeResult = yield from super().lsp_initialize(params)
        result.capabilities.experimental = {"vllmCompanion": {"actions": catalog(), "nextEdit": nextedit.capability()}}
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        self._server.services.documents.open(item.uri, item.language_id, item.version, item.text)
        self._server.services.completions.warmer.opened(item.uri)  # the prompt head, prefilled (warm.py)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        changes = [Change(c.text, getattr(c, "range", None)) for c in params.content_changes]
        doc = params.text_document
        typed(self._server, params)  # a partial accept in VS Code shows only as this edit
        self._server.services.nextedit.changing(doc.uri, changes)  # the edit history sees it before it applies
        self._server.services.documents.change(doc.uri, doc.version, changes, self._server.encoding)
        self._server.services.completions.typed(doc.uri)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        self._server.services.documents.close(params.text_document.uri)
        self._server.services.completions.forget(params.text_document.uri)
        self._server.services.acceptance.closed(params.text_document.uri)
        self._server.services.nextedit.closed(params.text_document.uri)
