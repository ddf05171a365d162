-- :VllmCompanionChat {question}   ask; the answer streams into a scratch buffer (q stops it)
-- :'<,'>VllmCompanionChat {q}     ask about the selected lines
-- :'<,'>VllmCompanionEdit {instr}  rewrite the selected lines
-- :VllmCompanionStop              stop the answer being streamed
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
