-- Edits show a diff before they land (issue 23): the proposed text goes in a scratch buffer beside
-- the document, both in diff mode. `ga` (or :VllmCompanionAccept) applies the edit, only to the
-- document version it was computed for (refused, with a message, if the buffer changed since);
-- `gr` or `q` (or :VllmCompanionReject) discards it. One proposal at a time: a new one replaces it.
local M = {}
local util = vim.lsp.util
local pending = nil -- {bufnr, proposed (buffer), edit, version, encoding, title}

local function name(bufnr)
  return vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':t')
end

local function warn_changed(bufnr, title)
  vim.notify(('vLLM Companion: %s changed since the edit was proposed; nothing was applied. Run %s again.')
    :format(name(bufnr), title), vim.log.levels.WARN)
end

local function close(p)
  for _, win in ipairs(vim.fn.win_findbuf(p.bufnr)) do
    vim.api.nvim_win_call(win, function() vim.cmd('diffoff') end)
  end
  if vim.api.nvim_buf_is_valid(p.proposed) then vim.api.nvim_buf_delete(p.proposed, { force = true }) end
end

--- The document `bufnr` with the text edits applied, in a new scratch buffer.
local function proposed_buffer(bufnr, edits, encoding)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false))
  util.apply_text_edits(edits, buf, encoding)
  vim.bo[buf].buflisted, vim.bo[buf].bufhidden, vim.bo[buf].modifiable = false, 'wipe', false
  vim.bo[buf].filetype = vim.bo[bufnr].filetype
  pcall(vim.api.nvim_buf_set_name, buf, 'vllm-companion://proposed/' .. name(bufnr))
  return buf
end

--- Show a server edit (a WorkspaceEdit with one versioned document change) as a diff split.
--- Returns the proposal's buffer, or nil when there is nothing to show or the document moved on.
function M.propose(edit, title, encoding)
  local change = type(edit) == 'table' and type(edit.documentChanges) == 'table' and edit.documentChanges[1]
  if not change or not change.textDocument or type(change.edits) ~= 'table' then return nil end
  local bufnr = vim.uri_to_bufnr(change.textDocument.uri)
  local version = change.textDocument.version
  if type(version) ~= 'number' then version = util.buf_versions[bufnr] end
  if not vim.api.nvim_buf_is_loaded(bufnr) or util.buf_versions[bufnr] ~= version then
    return warn_changed(bufnr, title)
  end
  if pending then M.reject() end
  local win = vim.fn.bufwinid(bufnr)
  if win == -1 then vim.cmd.buffer(bufnr) else vim.api.nvim_set_current_win(win) end
  local proposed = proposed_buffer(bufnr, change.edits, encoding)
  vim.cmd('diffthis')
  vim.cmd('vertical rightbelow sbuffer ' .. proposed)
  vim.cmd('diffthis')
  for lhs, fn in pairs({ ga = M.accept, gr = M.reject, q = M.reject }) do
    vim.keymap.set('n', lhs, fn, { buffer = proposed, desc = 'vLLM Companion: accept or reject the edit' })
  end
  pending = { bufnr = bufnr, proposed = proposed, edit = edit, version = version, encoding = encoding, title = title }
  vim.notify(('vLLM Companion: %s: ga accepts, gr rejects (:VllmCompanionAccept, :VllmCompanionReject)'):format(title))
  return proposed
end

--- Apply the proposed edit if its document is still at the version it was computed for.
function M.accept()
  local p = pending
  if not p then return vim.notify('vLLM Companion: no proposed edit', vim.log.levels.INFO) end
  pending = nil
  close(p)
  if not vim.api.nvim_buf_is_valid(p.bufnr) or util.buf_versions[p.bufnr] ~= p.version then
    warn_changed(p.bufnr, p.title)
    return false
  end
  util.apply_workspace_edit(p.edit, p.encoding)
  return true
end

function M.reject()
  local p = pending
  pending = nil
  if p then close(p) end
  return p ~= nil
end

return M
