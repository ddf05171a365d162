-- Next-edit suggestions (issue 22; docs/next-edit.md): the server predicts the edit that follows
-- the user's last one (a renamed parameter: the same rename at its next use) and answers
-- `textDocument/copilotInlineEdit` in the Copilot language server's shapes (docs/protocol.md):
-- `{edits = {{text, range, textDocument = {uri, version}, command}}}`.
-- - Asked after a typing pause (TextChanged/TextChangedI, debounced), on leaving insert mode and
--   when the cursor moves to another line in normal mode; a newer ask cancels the older one.
-- - Shown with extmarks: the text to replace struck through, the new text as inline virtual text
--   (several lines: virtual lines below), and a "jump" hint at the cursor when the edit is away.
-- - <Tab> (normal mode, only while one is showing; the usual <Tab> otherwise) jumps to the edit
--   when it is away, then accepts it: the edit is applied and its command sent to the server
--   (accept telemetry, and the edit history marks the change as accepted). <Esc> dismisses it.
-- - Dropped as soon as its buffer changes: an edit is only applied to the version it was made for.
local M = {}
local util = vim.lsp.util
local api = vim.api
local NS = api.nvim_create_namespace('vllm_companion.nextedit')
local HINT_NS = api.nvim_create_namespace('vllm_companion.nextedit.hint')
M.opts = { enabled = true, accept = '<Tab>', dismiss = '<Esc>', debounce_ms = 150 }
M.current = nil -- {client, buf, origin, edit, version, from = {row, col}, to = {row, col}} (bytes, 0-based)
local pending = {} -- client id -> request id of the ask in flight
local asked = nil -- "buf:version:row" of the last automatic ask (no second ask for the same place)
local timer = nil

local function capability(c)
  local exp = c and c.server_capabilities and c.server_capabilities.experimental or {}
  return type(exp.vllmCompanion) == 'table' and exp.vllmCompanion.nextEdit or nil
end

local function client(buf)
  for _, c in ipairs(vim.lsp.get_clients({ bufnr = buf, name = 'vllm_companion' })) do
    if capability(c) then return c end
  end
end

local function highlights()
  local del = api.nvim_get_hl(0, { name = 'DiffDelete', link = false })
  del.strikethrough, del.default = true, true
  api.nvim_set_hl(0, 'VllmCompanionNextEditDelete', del)
  api.nvim_set_hl(0, 'VllmCompanionNextEditInsert', { default = true, link = 'DiffAdd' })
  api.nvim_set_hl(0, 'VllmCompanionNextEditHint', { default = true, link = 'Comment' })
end

--- Clear what is shown (and forget it); nothing is sent to the server.
function M.clear()
  local s = M.current
  M.current = nil
  for _, b in ipairs(s and { s.buf, s.origin } or {}) do
    if api.nvim_buf_is_valid(b) then
      api.nvim_buf_clear_namespace(b, NS, 0, -1)
      api.nvim_buf_clear_namespace(b, HINT_NS, 0, -1)
    end
  end
end

--- A suggestion is showing and its buffer is still at the version it was computed for.
function M.showing()
  local s = M.current
  if s and api.nvim_buf_is_valid(s.buf) and util.buf_versions[s.buf] == s.version then return true end
  if s then M.clear() end
  return false
end

--- The edit is not under the cursor: another buffer, or other lines.
local function away(s)
  if api.nvim_get_current_buf() ~= s.buf then return true end
  local row = api.nvim_win_get_cursor(0)[1] - 1
  return row < s.from[1] or row > s.to[1]
end

local function place(s)
  if api.nvim_get_current_buf() ~= s.buf then
    return vim.fn.fnamemodify(api.nvim_buf_get_name(s.buf), ':t') .. ':' .. (s.from[1] + 1)
  end
  return 'line ' .. (s.from[1] + 1)
end

--- The "jump" hint at the end of the cursor's line while the edit is away from it.
local function hint()
  local s = M.current
  for _, b in ipairs(s and { s.buf, s.origin } or {}) do
    if api.nvim_buf_is_valid(b) then api.nvim_buf_clear_namespace(b, HINT_NS, 0, -1) end
  end
  local cur = api.nvim_get_current_buf()
  if not s or not away(s) or (cur ~= s.buf and cur ~= s.origin) then return end
  local key = M.opts.accept and (' (' .. M.opts.accept .. ')') or ''
  local row = api.nvim_win_get_cursor(0)[1] - 1
  api.nvim_buf_set_extmark(0, HINT_NS, row, 0, { virt_text_pos = 'eol', hl_mode = 'combine',
    virt_text = { { ('  ⇥ next edit: %s%s'):format(place(s), key), 'VllmCompanionNextEditHint' } } })
end

local function render(s)
  local from, to = s.from, s.to
  if from[1] ~= to[1] or from[2] ~= to[2] then
    api.nvim_buf_set_extmark(s.buf, NS, from[1], from[2], { end_row = to[1], end_col = to[2],
      hl_group = 'VllmCompanionNextEditDelete', priority = 200 })
  end
  local lines = vim.split(s.edit.text, '\r?\n')
  if #lines == 1 and lines[1] ~= '' then
    api.nvim_buf_set_extmark(s.buf, NS, to[1], to[2], { virt_text_pos = 'inline',
      virt_text = { { lines[1], 'VllmCompanionNextEditInsert' } } })
  elseif #lines > 1 then
    local virt = vim.tbl_map(function(l) return { { l, 'VllmCompanionNextEditInsert' } } end, lines)
    api.nvim_buf_set_extmark(s.buf, NS, to[1], 0, { virt_lines = virt })
  end
end

local function bytes(buf, p, encoding)
  local line = api.nvim_buf_get_lines(buf, p.line, p.line + 1, false)[1] or ''
  return { p.line, vim.str_byteindex(line, encoding, p.character, false) }
end

--- Show the first of the server's edits (the others are alternatives) if it is still current.
local function show(c, origin, edit)
  if type(edit) ~= 'table' or type(edit.textDocument) ~= 'table' or type(edit.text) ~= 'string' then return end
  local buf = vim.fn.bufnr(vim.uri_to_fname(edit.textDocument.uri))
  if buf == -1 or not api.nvim_buf_is_loaded(buf) or util.buf_versions[buf] ~= edit.textDocument.version then
    return
  end
  local last = api.nvim_buf_line_count(buf)
  if edit.range.start.line >= last or edit.range['end'].line >= last then return end
  M.clear()
  M.current = { client = c, buf = buf, origin = origin, edit = edit, version = edit.textDocument.version,
    from = bytes(buf, edit.range.start, c.offset_encoding), to = bytes(buf, edit.range['end'], c.offset_encoding) }
  render(M.current)
  hint()
  if edit.command then c:notify('textDocument/didShowInlineEdit', { item = { command = edit.command } }) end
end

--- Ask the server for the next edit at the cursor (automatic asks skip a place already asked).
function M.request(automatic)
  local buf = api.nvim_get_current_buf()
  local c = client(buf)
  if not c or (automatic and (not M.opts.enabled or require('vllm_companion.snooze').active())) then return end
  if M.showing() then return end
  local version = util.buf_versions[buf]
  local key = ('%d:%d:%d'):format(buf, version, api.nvim_win_get_cursor(0)[1])
  if automatic and key == asked then return end
  asked = key
  if pending[c.id] then c:cancel_request(pending[c.id]) end
  local params = util.make_position_params(0, c.offset_encoding)
  params.textDocument.version = version
  local req = {}
  local ok, id = c:request(capability(c).method, params, function(err, result)
    if pending[c.id] == req.id then pending[c.id] = nil end
    if err or type(result) ~= 'table' or type(result.edits) ~= 'table' or not api.nvim_buf_is_valid(buf) then return end
    if util.buf_versions[buf] ~= version or not result.edits[1] then return end
    show(c, buf, result.edits[1])
  end, buf)
  if ok then req.id, pending[c.id] = id, id end
end

local function later()
  if not timer then timer = vim.uv.new_timer() end
  timer:start(M.opts.debounce_ms, 0, vim.schedule_wrap(function() M.request(true) end))
end

--- Jump to the edit (another buffer, or other lines), keeping it in the jumplist.
function M.jump()
  local s = M.current
  if not M.showing() then return false end
  local win = vim.fn.bufwinid(s.buf)
  if win ~= -1 then api.nvim_set_current_win(win) elseif api.nvim_get_current_buf() ~= s.buf then
    vim.cmd.buffer(s.buf)
  end
  vim.cmd("normal! m'")
  api.nvim_win_set_cursor(0, { s.from[1] + 1, s.from[2] })
  hint()
  return true
end

--- Apply the edit (after a jump when it is away) and tell the server it was accepted.
function M.accept()
  local s = M.current
  if not M.showing() then return false end
  if away(s) then return M.jump() end
  M.clear()
  util.apply_text_edits({ { range = s.edit.range, newText = s.edit.text } }, s.buf, s.client.offset_encoding)
  local lines = vim.split(s.edit.text, '\r?\n')
  local col = (#lines == 1 and s.from[2] or 0) + #lines[#lines]
  pcall(api.nvim_win_set_cursor, 0, { s.from[1] + #lines, math.max(0, col - 1) })
  local cmd = s.edit.command
  if type(cmd) == 'table' and cmd.command then
    s.client:request('workspace/executeCommand', { command = cmd.command, arguments = cmd.arguments },
      function() end, s.buf)
  end
  return true
end

--- Hide the edit and tell the server it was dismissed.
function M.dismiss()
  local s = M.current
  if not M.showing() then return false end
  M.clear()
  local id = type(s.edit.command) == 'table' and s.edit.command.arguments or nil
  local dismiss = capability(s.client) and capability(s.client).dismiss
  if dismiss and id then s.client:request('workspace/executeCommand', { command = dismiss, arguments = id }, function() end, s.buf) end
  return true
end

local function map(buf, lhs, fn, desc)
  if not lhs then return end
  vim.keymap.set('n', lhs, function()
    return M.showing() and ('<Cmd>lua require("vllm_companion.nextedit").' .. fn .. '()<CR>') or lhs
  end, { buffer = buf, expr = true, desc = 'vLLM Companion: ' .. desc })
end

--- Start next-edit suggestions in `buf` for the client `c` (when the server offers them).
function M.attach(c, buf)
  if not capability(c) or not M.opts.enabled then return end
  local group = api.nvim_create_augroup('vllm_companion.nextedit.' .. buf, { clear = true })
  local function on(events, fn) api.nvim_create_autocmd(events, { group = group, buffer = buf, callback = fn }) end
  on({ 'TextChanged', 'TextChangedI' }, function()
    if M.current and not M.showing() then M.clear() end
    later()
  end)
  on('InsertLeave', later)
  on('CursorMoved', function()
    if M.showing() then hint() else later() end
  end)
  on('BufEnter', function() c:notify('textDocument/didFocus', { textDocument = { uri = vim.uri_from_bufnr(buf) } }) end)
  on('BufUnload', function() if M.current and (M.current.buf == buf or M.current.origin == buf) then M.clear() end end)
  map(buf, M.opts.accept, 'accept', 'jump to / accept the next edit')
  map(buf, M.opts.dismiss, 'dismiss', 'dismiss the next edit')
end

--- opts: enabled, accept (key, false for none), dismiss (key, false for none), debounce_ms.
function M.setup(opts)
  M.opts = vim.tbl_extend('force', M.opts, opts or {})
  highlights()
  api.nvim_create_autocmd('ColorScheme', { group = api.nvim_create_augroup('vllm_companion.nextedit', {}),
    callback = highlights })
end

return M
