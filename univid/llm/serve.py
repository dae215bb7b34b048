"""`univid serve-llm`: one configured llm backend behind an OpenAI-compatible HTTP server, in its own process.

On a GPU cluster the documented engine for the local 7-8B roles is vLLM (`vllm serve ...`, README). vLLM does not
run on our CPU machines, so this server is its stand-in there: the same protocol (`GET /v1/models`, `POST
/v1/chat/completions` with messages, temperature, max_tokens), the same lifecycle (started inside the job on
127.0.0.1, polled until it answers, stopped by its PID), so a job points `kind: openai` roles at it exactly as it
would at vLLM. It serves the backend in-process (univid.llm.local), one generation at a time (the model is one
forward at a time on a CPU), while accepting connections concurrently. The port it bound is written to --port-file
once it listens, so a caller can ask for port 0 and read the one it got.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from univid.llm.base import LLMError


def _system_and_prompt(msgs) -> tuple[str | None, str]:
    """The (system, user) pair the backends take, from chat messages: one optional system turn, one user turn."""
    if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
        raise ValueError("messages: expected a non-empty list of {role, content}")
    roles = [m.get("role") for m in msgs]
    if roles not in (["user"], ["system", "user"]):
        raise ValueError(f"messages roles {roles}: expected [user] or [system, user] (one turn, as the roles send)")
    return (msgs[0]["content"] if len(msgs) == 2 else None), msgs[-1]["content"]


def make_handler(backend, model_name: str):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model",
                                                             "owned_by": backend.backend_id}]})
            else:
                self._send(404, {"error": {"message": f"{self.path}: not found (expected /v1/models)"}})

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"{self.path}: not found (expected /v1/chat/completions)"}})
                return
            try:
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if req.get("model") not in (None, model_name):
                    raise ValueError(f"model {req.get('model')!r}: not served here (expected {model_name!r})")
                system, prompt = _system_and_prompt(req.get("messages"))
                decoding = {"temperature": float(req.get("temperature") or 0.0),
                            "max_new_tokens": int(req.get("max_tokens") or 64)}
                fmt = req.get("response_format") or {}
                if fmt.get("type") == "json_schema":  # as vLLM's guided decoding: sample only the shape
                    decoding["json_schema"] = fmt["json_schema"]["schema"]
            except (ValueError, TypeError, KeyError, json.JSONDecodeError) as e:
                self._send(400, {"error": {"message": str(e)}})
                return
            try:
                with lock:
                    text = backend.generate(prompt, system=system, **decoding)
            except (LLMError, ValueError) as e:
                self._send(500, {"error": {"message": str(e)}})
                return
            self._send(200, {"object": "chat.completion", "model": model_name,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}]})

        def log_message(self, *args):  # one line per request would drown the job's log
            pass

    return Handler


def serve(backend, model_name: str, host: str = "127.0.0.1", port: int = 0,
          port_file: str | os.PathLike | None = None) -> None:
    server = ThreadingHTTPServer((host, port), make_handler(backend, model_name))
    server.daemon_threads = True
    if port_file:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(str(server.server_port))
        os.replace(tmp, port_file)
    print(f"serving {model_name} ({backend.backend_id}) on http://{host}:{server.server_port}/v1 (pid {os.getpid()})",
          flush=True)
    server.serve_forever()
