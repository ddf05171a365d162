-- vLLM Companion for Neovim (0.11+): the language server for completion (the built-in LSP
-- completion with autotrigger; native ghost text through vim.lsp.inline_completion on 0.12+),
-- plus chat, edit, the server's actions and a statusline, over the server's own LSP methods.
-- Edits show a diff before they land (diff.lua); suggestions can be snoozed (snooze.lua); next-edit
-- suggestions are shown with extmarks and accepted with <Tab> (nextedit.lua).
-- Shipped inside the Python package: `vllm-companion editor-path nvim` prints this runtimepath.
local M = {}
local NAME = 'vllm_companion'
local diff = require('vllm_companion.diff')
local snooze = require('vllm_companion.snooze')
local nextedit = require('vllm_companion.nextedit')
M.status = { state = 'starting', message = '' }
local chats = {} -- partialResultToken -> {buf = bufnr, request = id}

local function client()
  return vim.lsp.get_clients({ name = NAME })[1]
end

local function append(buf, text)
  if not vim.api.nvim_buf_is_valid(buf) then return end
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  local pieces = vim.split(tail .. text, '\n', { plain = true })
  vim.api.nvim_buf_set_lines(buf, last - 1, last, false, pieces)
end

local function on_progress(err, result, ctx, config)
  local chat = result and chats[result.token]
  if chat and type(result.value) == 'table' and result.value.delta then
    append(chat.buf, result.value.delta)
    return
  end
  return vim.lsp.handlers['$/progress'](err, result, ctx, config)
end

local function on_status(_, result)
  M.status = result or M.status
  vim.cmd.redrawstatus({ bang = true })
end

--- `%{v:lua.require'vllm_companion'.statusline()}`
function M.statusline()
  local s = M.status
  return ('vLLM %s%s'):format(snooze.label() or s.state or '?', s.model and (' ' .. s.model) or '')
end

local function scratch(title)
  vim.cmd('botright new')
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype, vim.bo[buf].bufhidden, vim.bo[buf].filetype = 'nofile', 'wipe', 'markdown'
  pcall(vim.api.nvim_buf_set_name, buf, title)
  return buf
end

--- Ask in a scratch buffer; the answer streams in. `q` or :VllmCompanionStop stops it.
function M.chat(question, context)
  local c = client()
  if not c then return vim.notify('vLLM Companion: the server is not running', vim.log.levels.ERROR) end
  local buf = scratch('vllm-companion://chat/' .. os.time())
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { '> ' .. question, '' })
  local token = ('nvim-chat-%d-%d'):format(vim.uv.hrtime(), buf)
  local params = { messages = { { role = 'user', content = question } }, context = context, partialResultToken = token }
  local _, id = c:request('vllmCompanion/chat', params, function(err, result)
    chats[token] = nil
    local note = err and ('(error: ' .. tostring(err.message) .. ')')
      or (result and result.finishReason ~= 'stop' and ('(' .. result.finishReason .. ')'))
    if note then append(buf, '\n' .. note) end
  end)
  chats[token] = { buf = buf, request = id }
  vim.b[buf].vllm_companion_chat = token
  vim.keymap.set('n', 'q', M.stop, { buffer = buf, desc = 'vLLM Companion: stop the answer' })
  return buf, token
end

--- Stop the answer streaming into the current chat buffer (or the latest one).
function M.stop()
  local c = client()
  local token = vim.b.vllm_companion_chat
  local chat = chats[token] or select(2, next(chats))
  if c and chat then c:cancel_request(chat.request) end
end

local function selection_range(line1, line2)
  local last = vim.api.nvim_buf_get_lines(0, line2 - 1, line2, false)[1] or ''
  return { start = { line = line1 - 1, character = 0 }, ['end'] = { line = line2 - 1, character = #last } }
end

--- Rewrite lines line1..line2 by the instruction: the edit comes back as a diff to accept.
function M.edit(instruction, line1, line2)
  local c = client()
  if not c then return vim.notify('vLLM Companion: the server is not running', vim.log.levels.ERROR) end
  local params = { textDocument = { uri = vim.uri_from_bufnr(0) }, range = selection_range(line1, line2),
    instruction = instruction, apply = false }
  c:request('vllmCompanion/edit', params, function(err, result)
    if err then return vim.notify('vLLM Companion: ' .. tostring(err.message), vim.log.levels.ERROR) end
    -- Only a whole answer is a rewrite: one the token cap cut is an error from the server (it
    -- would replace the selection with half the code), any other end is said, never proposed.
    if result and result.finishReason == 'stop' then
      diff.propose(result.edit, 'Edit', c.offset_encoding)
    elseif result then
      vim.notify(('vLLM Companion: the edit ended (%s); nothing was changed'):format(
        tostring(result.error or result.finishReason)), vim.log.levels.WARN)
    end
  end)
end

M.accept, M.reject = diff.accept, diff.reject
M.next_edit = nextedit

--- No automatic suggestions for `minutes` (they come back by themselves); `resume` ends it early.
function M.snooze(minutes) snooze.start(minutes) end
function M.resume() snooze.resume() end

-- The server's action catalog (initialize result): chat actions open a chat buffer, actions
-- without an instruction ask for one; edits run on the server. Nothing here names an action.
-- A code action's arguments are {uri, range, instruction, version, opened}: the instruction goes
-- third, the version and the opening stay (the server refuses to run on a buffer changed, or
-- closed and opened again, since it was offered).
local function register_actions(c)
  local experimental = c.server_capabilities.experimental or {}
  local actions = (experimental.vllmCompanion or {}).actions or {}
  for _, action in ipairs(actions) do
    vim.lsp.commands[action.command] = function(command)
      local args = command.arguments or {}
      local function run(instruction)
        if not instruction or instruction == '' then return end
        if action.mode == 'chat' then
          return M.chat(instruction, { selection = { uri = args[1], range = args[2] } })
        end
        local params = { command = action.command, arguments = { args[1], args[2], instruction, args[4], args[5] } }
        c:request('workspace/executeCommand', params, function(err, result) -- edits: shown as a diff
          if err then return vim.notify('vLLM Companion: ' .. tostring(err.message), vim.log.levels.ERROR) end
          if type(result) == 'table' and result.preview == true then
            diff.propose(result.edit, action.title, c.offset_encoding)
          end
        end)
      end
      if action.instruction == vim.NIL or action.instruction == nil then
        vim.ui.input({ prompt = action.title .. ': ' }, run)
      else
        run(action.instruction)
      end
    end
  end
end

--- opts: cmd (default {'vllm-companion', 'lsp'}), init_options (the server's settings), filetypes,
--- next_edit ({enabled, accept = '<Tab>', dismiss = '<Esc>', debounce_ms}: nextedit.lua).
function M.setup(opts)
  opts = opts or {}
  vim.lsp.config(NAME, {
    cmd = opts.cmd or { 'vllm-companion', 'lsp' },
    filetypes = opts.filetypes,
    init_options = opts.init_options or {},
    capabilities = { experimental = { vllmCompanion = { prompts = true, previewEdits = true } } },
    handlers = { ['$/progress'] = on_progress, ['vllmCompanion/status'] = on_status },
  })
  vim.lsp.enable(NAME)
  nextedit.setup(opts.next_edit)
  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('vllm_companion', { clear = true }),
    callback = function(args)
      local c = vim.lsp.get_client_by_id(args.data.client_id)
      if not c or c.name ~= NAME then return end
      register_actions(c)
      nextedit.attach(c, args.buf)
      if snooze.active() then
        snooze.apply(c, args.buf, false)
      elseif vim.lsp.inline_completion then -- Neovim 0.12+: ghost text
        vim.lsp.inline_completion.enable(true, { bufnr = args.buf })
      else
        vim.lsp.completion.enable(true, c.id, args.buf, { autotrigger = true })
      end
    end,
  })
end

return M
