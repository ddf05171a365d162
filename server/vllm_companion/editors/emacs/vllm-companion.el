;;; vllm-companion.el --- vLLM Companion chat through eglot  -*- lexical-binding: t; -*-

;; Shipped inside the Python package: `vllm-companion editor-path emacs' prints its folder.
;; Completion needs nothing from here: eglot plus `completion-at-point' (or company/corfu) use the
;; server's textDocument/completion.  This adds chat: M-x vllm-companion-chat asks the server
;; (vllmCompanion/chat) and streams the answer into the *vLLM Companion* buffer; with an active
;; region the selection goes along as context.  M-x vllm-companion-stop cancels it.
;;
;;   (add-to-list 'load-path (string-trim (shell-command-to-string "vllm-companion editor-path emacs")))
;;   (require 'vllm-companion)
;;   (vllm-companion-register-server)   ; python/js/... modes -> `vllm-companion lsp'

;;; Code:

(require 'eglot)
(require 'jsonrpc)

(defgroup vllm-companion nil "vLLM Companion." :group 'tools)

(defcustom vllm-companion-command '("vllm-companion" "lsp")
  "How to start the language server."
  :type '(repeat string))

(defcustom vllm-companion-init-options nil
  "The server's settings (initializationOptions), as a plist, e.g. (:backend (:launch t))."
  :type 'sexp)

(defcustom vllm-companion-modes '(python-mode js-mode c-mode c++-mode go-mode rust-mode)
  "Major modes that get the server."
  :type '(repeat symbol))

(defvar vllm-companion--token nil "The partialResultToken of the answer streaming now.")
(defvar vllm-companion--request nil "The id of the chat request streaming now.")

(defun vllm-companion-register-server ()
  "Make eglot start `vllm-companion lsp' for `vllm-companion-modes'."
  (add-to-list 'eglot-server-programs
               (cons vllm-companion-modes
                     (append vllm-companion-command
                             (and vllm-companion-init-options
                                  (list :initializationOptions vllm-companion-init-options))))))

(defun vllm-companion--buffer ()
  (let ((buf (get-buffer-create "*vLLM Companion*")))
    (with-current-buffer buf (unless (derived-mode-p 'special-mode) (special-mode)))
    buf))

(defun vllm-companion--append (text)
  (with-current-buffer (vllm-companion--buffer)
    (let ((inhibit-read-only t))
      (goto-char (point-max))
      (insert text))))

(cl-defmethod eglot-handle-notification :before (_server (_method (eql $/progress)) &key token value)
  "Chat deltas arrive as $/progress on our token."
  (when (and vllm-companion--token (equal token vllm-companion--token))
    (let ((delta (plist-get value :delta)))
      (when (stringp delta) (vllm-companion--append delta)))))

(defun vllm-companion--context ()
  (when (use-region-p)
    (let ((start (eglot--pos-to-lsp-position (region-beginning)))
          (end (eglot--pos-to-lsp-position (region-end))))
      (list :selection (list :uri (eglot--path-to-uri (buffer-file-name))
                             :range (list :start start :end end))))))

(defun vllm-companion-chat (question)
  "Ask QUESTION; the answer streams into the *vLLM Companion* buffer."
  (interactive "sAsk vLLM Companion: ")
  (let* ((server (eglot--current-server-or-lose))
         (token (format "emacs-chat-%s" (float-time)))
         (params (list :messages (vector (list :role "user" :content question))
                       :partialResultToken token)))
    (when-let ((context (vllm-companion--context))) (setq params (plist-put params :context context)))
    (setq vllm-companion--token token)
    (vllm-companion--append (format "\n> %s\n\n" question))
    (display-buffer (vllm-companion--buffer))
    (setq vllm-companion--request
          (car (jsonrpc-async-request
                server :vllmCompanion/chat params
                :success-fn (lambda (result)
                              (setq vllm-companion--token nil)
                              (let ((reason (plist-get result :finishReason)))
                                (vllm-companion--append
                                 (if (equal reason "stop") "\n" (format "\n(%s)\n" reason)))))
                :error-fn (lambda (err)
                            (setq vllm-companion--token nil)
                            (vllm-companion--append (format "\n(error: %s)\n" (plist-get err :message))))
                :timeout 600)))))

(defun vllm-companion-stop ()
  "Stop the answer streaming now."
  (interactive)
  (when vllm-companion--request
    (jsonrpc-notify (eglot--current-server-or-lose) :$/cancelRequest (list :id vllm-companion--request))))

(provide 'vllm-companion)
;;; vllm-companion.el ends here
