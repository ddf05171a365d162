"""The edit history (nextedit/history.py): keystrokes coalesce by pause and locality, the bounds
hold, secret files are never recorded, inline secrets are redacted, accepted edits are marked."""

from __future__ import annotations

from vllm_companion.documents import Change, DocumentStore, Position
from vllm_companion.nextedit import diffing
from vllm_companion.nextedit import history as h
from vllm_companion.nextedit.history import EditHistory
from vllm_companion.nextedit.propagation import rename_of
from vllm_companion.privacy import Privacy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class R:
    def __init__(self, line: int, col: int, line2: int | None = None, col2: int | None = None) -> None:
        self.start = Position(line, col)
        self.end = Position(line if line2 is None else line2, col if col2 is None else col2)


def setup(text: str, uri: str = "file:///w/a.py") -> tuple[DocumentStore, EditHistory, Clock]:
    docs = DocumentStore()
    docs.open(uri, "python", 1, text)
    clock = Clock()
    return docs, EditHistory(docs, Privacy(roots=["file:///w"]), clock), clock


def edit(docs: DocumentStore, hist: EditHistory, uri: str, rng: R, text: str) -> None:
    change = Change(text, rng)
    hist.changing(uri, [change])
    docs.change(uri, 2, [change], "utf-16")


def type_chars(docs: DocumentStore, hist: EditHistory, uri: str, row: int, col: int, text: str) -> None:
    for i, ch in enumerate(text):
        edit(docs, hist, uri, R(row, col + i), ch)


def test_keystrokes_coalesce_into_one_edit_with_context() -> None:
    docs, hist, clock = setup("a\nb\ndef f(count):\n    return count\nc\n")
    uri = "file:///w/a.py"
    edit(docs, hist, uri, R(2, 6, 2, 11), "")  # delete "count"
    for i, ch in enumerate("total"):
        clock.now += 0.2
        edit(docs, hist, uri, R(2, 6 + i), ch)
    (only,) = hist.recent(10, 1000)
    assert only.before == "a\nb\ndef f(count):\n    return count\nc"
    assert only.after == "a\nb\ndef f(total):\n    return count\nc"
    assert only.start_row == 2 and only.path == "a.py" and not only.accepted


def test_a_pause_or_a_far_change_closes_an_edit() -> None:
    docs, hist, clock = setup("".join(f"line{i}\n" for i in range(60)))
    uri = "file:///w/a.py"
    type_chars(docs, hist, uri, 1, 5, "ab")
    clock.now += h.PAUSE_S + 0.1
    type_chars(docs, hist, uri, 1, 7, "c")  # same place, after a pause: a second edit
    type_chars(docs, hist, uri, 40, 0, "x")  # far away: a third
    edits = hist.recent(10, 10_000)
    assert [e.after.splitlines()[e.start_row - max(0, e.start_row - 2)] for e in edits] == [
        "line1ab", "line1abc", "xline40"]


def test_newest_within_count_and_token_budget_oldest_first() -> None:
    docs, hist, _clock = setup("".join(f"line{i}\n" for i in range(200)))
    uri = "file:///w/a.py"
    for row in range(0, 200, 20):
        type_chars(docs, hist, uri, row, 0, "z")
    rows = [e.start_row for e in hist.recent(3, 10_000)]
    assert rows == [140, 160, 180]
    assert len(hist.recent(10, 10)) < 3  # 10 tokens hold no more than one small edit


def test_bounded_in_total() -> None:
    docs, hist, _clock = setup("".join(f"line{i}\n" for i in range(2000)))
    uri = "file:///w/a.py"
    for row in range(0, 2000, 10):
        type_chars(docs, hist, uri, row, 0, "q")
    kept, open_ = hist.size()
    assert kept <= h.MAX_EDITS and open_ <= h.MAX_OPEN


def test_secret_files_are_never_recorded() -> None:
    docs, hist, _clock = setup("API=1\n", uri="file:///w/.env")
    edit(docs, hist, "file:///w/.env", R(0, 4, 0, 5), "hunter2")
    assert hist.recent(10, 1000) == () and hist.size() == (0, 0)


def test_inline_secrets_are_redacted() -> None:
    docs, hist, _clock = setup("key = ''\n")
    uri = "file:///w/a.py"
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    edit(docs, hist, uri, R(0, 7), secret)
    (only,) = hist.recent(10, 1000)
    assert secret not in only.after and "redacted" in only.after


def test_accepted_edits_are_marked_whichever_comes_first() -> None:
    docs, hist, _clock = setup("x = 1\n\n\n\n\n\n\n\n\n\n\n\n\n\ny = 1\n")
    uri = "file:///w/a.py"
    edit(docs, hist, uri, R(0, 4, 0, 5), "2")
    hist.accepted(uri, 14)  # the command before the didChange that applies it
    edit(docs, hist, uri, R(14, 4, 14, 5), "2")
    first, second = hist.recent(10, 1000)
    assert not first.accepted and second.accepted
    edit(docs, hist, uri, R(0, 0), "#")
    hist.accepted(uri, 0)  # the didChange first, then the command
    assert hist.recent(10, 1000)[-1].accepted


def test_a_full_text_change_is_recorded_as_the_lines_it_changed() -> None:
    docs, hist, _clock = setup("a\nb\nc\n")
    uri = "file:///w/a.py"
    edit(docs, hist, uri, None, "a\nB\nc\n")  # type: ignore[arg-type]
    (only,) = hist.recent(10, 1000)
    assert (only.start_row, only.before, only.after) == (1, "a\nb\nc", "a\nB\nc")


def test_a_long_line_is_cut_around_the_change() -> None:
    line = "x" * 100_000
    docs, hist, _clock = setup(line + "\n")
    uri = "file:///w/a.py"
    edit(docs, hist, uri, R(0, 50_000), "CHANGED")
    (only,) = hist.recent(10, 100_000)
    assert "CHANGED" in only.after and len(only.after) <= diffing.MAX_LINE_CHARS + 1


def test_an_accepted_edit_applied_before_its_command_is_the_last_edit_not_merged_with_the_rename() -> None:
    """Neovim applies an accepted suggestion (a didChange) before it sends the accept command, a
    moment after the user's rename: before, both joined one open edit, the last edit was no longer
    a rename, and propagation stopped after the first accept."""
    docs, hist, clock = setup("def f(count):\n    return count + count\n")
    uri = "file:///w/a.py"
    edit(docs, hist, uri, R(0, 6, 0, 11), "")
    type_chars(docs, hist, uri, 0, 6, "total")
    clock.now += 0.3
    edit(docs, hist, uri, R(1, 11, 1, 16), "total")  # the suggestion, applied by the editor
    hist.accepted(uri, 1)
    last = hist.last()
    assert last is not None and last.accepted and last.start_row == 1
    assert last.before.endswith("return count + count") and last.after.endswith("return total + count")
    rename = rename_of(last)
    assert rename is not None and (rename.old, rename.new) == ("count", "total")
    mine = hist.recent(2, 1 << 20)[0]
    assert not mine.accepted and mine.start_row == 0 and "count" in mine.before and "total" in mine.after
