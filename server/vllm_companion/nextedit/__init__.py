"""Next-edit suggestions (issue 22): the user's edit history, edit propagation (no model), a
model's predicted region turned into an edit, and the service that answers the editor's
``textDocument/copilotInlineEdit`` (lsp/nextedit.py). docs/next-edit.md."""
