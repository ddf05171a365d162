-- Snooze (issue 23): no automatic suggestions for N minutes, then they come back by themselves.
-- In memory only (nothing written to the server's settings). While snoozed, the buffers the
-- server is attached to keep completion without its autotrigger (Neovim 0.11: <C-x><C-o> still
-- asks) or, on 0.12+, without automatic ghost text.
local M = {}
M.until_time = nil -- os.time() when the snooze ends
local timer = nil

--- Automatic suggestions on or off in every buffer the client `c` is attached to.
function M.apply(c, buf, on)
  if vim.lsp.inline_completion then
    vim.lsp.inline_completion.enable(on, { bufnr = buf })
  else
    vim.lsp.completion.enable(false, c.id, buf)
    vim.lsp.completion.enable(true, c.id, buf, { autotrigger = on })
  end
end

local function apply_all(on)
  local c = vim.lsp.get_clients({ name = 'vllm_companion' })[1]
  if not c then return end
  for _, buf in ipairs(vim.lsp.get_buffers_by_client_id(c.id)) do M.apply(c, buf, on) end
end

local function stop_timer()
  if timer then
    timer:stop()
    timer:close()
    timer = nil
  end
end

function M.active()
  return M.until_time ~= nil and os.time() < M.until_time
end

--- "snoozed until 14:05", or nil when not snoozed.
function M.label()
  return M.active() and ('snoozed until ' .. os.date('%H:%M', M.until_time)) or nil
end

function M.start(minutes)
  minutes = tonumber(minutes)
  if not minutes or minutes <= 0 then
    return vim.notify('vLLM Companion: snooze takes a number of minutes, e.g. :VllmCompanionSnooze 15',
      vim.log.levels.ERROR)
  end
  stop_timer()
  M.until_time = os.time() + math.floor(minutes * 60)
  apply_all(false)
  timer = vim.uv.new_timer()
  timer:start(math.floor(minutes * 60000), 0, vim.schedule_wrap(M.resume))
  vim.cmd.redrawstatus({ bang = true })
end

function M.resume()
  local was = M.until_time ~= nil
  stop_timer()
  M.until_time = nil
  if was then apply_all(true) end
  vim.cmd.redrawstatus({ bang = true })
end

return M
