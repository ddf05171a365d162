-- :VllmCompanionChat {question}   ask; the answer streams into a scratch buffer (q stops it)
-- :'<,'>VllmCompanionChat {q}     ask about the selected lines
-- :'<,'>VllmCompanionEdit {instr}  rewrite the selected lines
-- :VllmCompanionStop              stop the answer being streamed
-- :VllmCompanionAccept / :VllmCompanionReject   the edit shown as a diff (ga / gr in it)
-- :VllmCompanionSnooze [minutes]  no automatic suggestions for a while (default 15)
-- :VllmCompanionResume            automatic suggestions again
-- :VllmCompanionNextEdit          ask for the next edit now (<Tab> jumps/accepts, <Esc> dismisses)
if vim.g.loaded_vllm_companion then return end
vim.g.loaded_vllm_companion = true

vim.api.nvim_create_user_command('VllmCompanionChat', function(o)
  local context = nil
  if o.range > 0 then
    local last = vim.api.nvim_buf_get_lines(0, o.line2 - 1, o.line2, false)[1] or ''
    context = { selection = { uri = vim.uri_from_bufnr(0), range = {
      start = { line = o.line1 - 1, character = 0 }, ['end'] = { line = o.line2 - 1, character = #last } } } }
  end
  require('vllm_companion').chat(o.args, context)
end, { nargs = '+', range = true, desc = 'vLLM Companion: ask' })

vim.api.nvim_create_user_command('VllmCompanionEdit', function(o)
  require('vllm_companion').edit(o.args, o.line1, o.line2)
end, { nargs = '+', range = true, desc = 'vLLM Companion: rewrite the selected lines' })

vim.api.nvim_create_user_command('VllmCompanionStop', function()
  require('vllm_companion').stop()
end, { desc = 'vLLM Companion: stop the answer' })

vim.api.nvim_create_user_command('VllmCompanionAccept', function()
  require('vllm_companion').accept()
end, { desc = 'vLLM Companion: apply the edit shown as a diff' })

vim.api.nvim_create_user_command('VllmCompanionReject', function()
  require('vllm_companion').reject()
end, { desc = 'vLLM Companion: discard the edit shown as a diff' })

vim.api.nvim_create_user_command('VllmCompanionSnooze', function(o)
  require('vllm_companion').snooze(o.args ~= '' and o.args or 15)
end, { nargs = '?', desc = 'vLLM Companion: no automatic suggestions for N minutes (default 15)' })

vim.api.nvim_create_user_command('VllmCompanionResume', function()
  require('vllm_companion').resume()
end, { desc = 'vLLM Companion: automatic suggestions again' })

vim.api.nvim_create_user_command('VllmCompanionNextEdit', function()
  require('vllm_companion.nextedit').request(false)
end, { desc = 'vLLM Companion: ask for the next edit at the cursor' })
