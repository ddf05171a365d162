"""Emacs 28 + eglot 1.9 (Debian packages) in batch mode, with the elisp file that ships in the
Python package (docs/editors/emacs.md): eglot connects, `completion-at-point` inserts the
suggestion, `vllm-companion-chat` streams the answer into its buffer."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.editors.helpers import PYTHON, ROOT, fake_engine, need
from tests.fake_backend import Reply

ELISP = ROOT / "server" / "vllm_companion" / "editors" / "emacs"

DRIVER = r"""
(require 'vllm-companion)
(require 'python)
(setq vllm-companion-command (list "{python}" "-m" "vllm_companion" "lsp")
      vllm-companion-init-options '{options}
      eglot-sync-connect 30)
(vllm-companion-register-server)
(find-file "{file}")
(python-mode)
(apply #'eglot (eglot--guess-contact))
(goto-char (point-max))
(let ((deadline (+ (float-time) {wait})) (before (buffer-string)))
  (while (and (equal before (buffer-string)) (< (float-time) deadline))
    (completion-at-point)
    (unless (equal before (buffer-string)) (setq deadline 0))
    (accept-process-output nil 0.5)))
(princ (format "BUFFER<<%s>>\n" (buffer-string)))
(vllm-companion-chat "What is a list?")
(let ((deadline (+ (float-time) 20)))
  (while (and vllm-companion--token (< (float-time) deadline))
    (accept-process-output nil 0.1)))
(princ (format "CHAT<<%s>>\n" (with-current-buffer "*vLLM Companion*" (buffer-string))))
(eglot-shutdown (eglot--current-server-or-lose))
"""


def run_emacs(source: Path, options: str, env: dict[str, str] | None = None, wait: float = 5) -> str:
    """Emacs in batch mode on ``source``: complete at its end, then chat; the printed output."""
    emacs = need("emacs", "apt-get install emacs-nox elpa-eglot")
    driver = source.parent / "driver.el"
    driver.write_text(DRIVER.format(python=PYTHON, options=options, file=source, wait=wait))
    done = subprocess.run([emacs, "--batch", "-q", "-L", str(ELISP), "-l", str(driver)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    return done.stdout + done.stderr


def test_eglot_completes_and_chats(tmp_path: Path) -> None:
    with fake_engine() as fake:
        fake.default = lambda body: Reply(chunks=["Lists ", "hold ", "items."]) if "messages" in body \
            else Reply(chunks=["x * x"])
        source = tmp_path / "square.py"
        source.write_text("def square(x):\n    return ")
        output = run_emacs(source, f'(:backend (:endpoint "{fake.url}") :completion (:debounceMs 0))')
    assert "BUFFER<<def square(x):\n    return x * x>>" in output, output[-3000:]
    assert "Lists hold items." in output.split("CHAT<<", 1)[-1], output[-3000:]
