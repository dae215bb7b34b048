"""Any OpenAI-compatible chat-completions endpoint (DeepSeek, DashScope compatible mode, vLLM, ...), via urllib.

The API key is read from the environment variable the config names (never from the config, never logged).
429 and 5xx answers, timeouts and connection errors are retried with exponential backoff (a Retry-After header,
when given, is honoured up to 60 s); other 4xx answers fail at once. The backend is thread-safe: callers that have
independent requests (the Video-QA judge) send up to `max_concurrency` (default 8) at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request

from univid.llm.base import LLMError, decoding_params, messages

RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAICompatLLM:
    def __init__(self, spec: dict, sleep=time.sleep):
        for key in ("base_url", "model"):
            if not spec.get(key):
                raise ValueError(f"llm backend (kind openai): `{key}` is required (expected e.g. base_url "
                                 f"https://api.deepseek.com and model deepseek-chat)")
        self.base_url = spec["base_url"].rstrip("/")
        self.model_id = spec["model"]
        self.backend_id = f"openai:{self.base_url}"
        self.api_key_env = spec.get("api_key_env")
        self.timeout_s = float(spec.get("timeout_s") or 60.0)
        self.max_retries = int(spec.get("max_retries") if spec.get("max_retries") is not None else 5)
        self.backoff_s = float(spec.get("backoff_s") if spec.get("backoff_s") is not None else 1.0)
        self._sleep = sleep
        self.attempts = 0  # HTTP requests sent (including retries)
        self.max_concurrency = int(spec.get("max_concurrency") or 8)
        # How a JSON reply is asked for: json_object (DeepSeek, DashScope, OpenAI), json_schema (OpenAI, vLLM's
        # guided decoding: the shape itself), none (an endpoint that rejects response_format).
        self.response_format = spec.get("response_format") or "json_object"
        if self.response_format not in ("json_object", "json_schema", "none"):
            raise ValueError(f"llm backend {self.backend_id}: response_format {self.response_format!r} (expected "
                             f"json_object, json_schema or none)")
        if self.max_concurrency < 1:
            raise ValueError(f"llm backend {self.backend_id}: max_concurrency {self.max_concurrency} (expected >= 1)")

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise LLMError(f"llm backend {self.backend_id}: environment variable {self.api_key_env} is not set "
                               f"(expected the API key there)")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_s * (2 ** attempt)
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), 60.0))
            except ValueError:
                pass
        self._sleep(delay)

    def generate(self, prompt: str, system: str | None = None, **decoding) -> str:
        d = decoding_params(decoding)
        if d.get("response_prefix"):
            raise LLMError(f"llm backend {self.backend_id}: response_prefix is not supported by OpenAI-compatible "
                           f"chat endpoints (expected it only on local transformers backends)")
        request = {"model": self.model_id, "messages": messages(prompt, system), "temperature": d["temperature"],
                   "max_tokens": d["max_new_tokens"]}
        if d.get("json_schema") and self.response_format != "none":
            request["response_format"] = ({"type": "json_object"} if self.response_format == "json_object" else
                                          {"type": "json_schema",
                                           "json_schema": {"name": "reply", "schema": d["json_schema"]}})
        body = json.dumps(request).encode()
        url = f"{self.base_url}/chat/completions"
        headers = self._headers()
        last = ""
        for attempt in range(self.max_retries + 1):
            self.attempts += 1
            req = urllib.request.Request(url, data=body, headers=headers, method="POST")
            retry_after = None
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                return _content(payload, url)
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
                if e.code not in RETRY_STATUS:
                    raise LLMError(f"llm backend {self.backend_id}: {url} answered HTTP {e.code} "
                                   f"(expected 200; not retried)") from None
                retry_after = e.headers.get("Retry-After") if e.headers else None
            except (TimeoutError, socket.timeout):
                last = f"timeout after {self.timeout_s:g} s"
            except urllib.error.URLError as e:
                if isinstance(e.reason, (TimeoutError, socket.timeout)):
                    last = f"timeout after {self.timeout_s:g} s"
                else:
                    last = f"connection error ({e.reason})"
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise LLMError(f"llm backend {self.backend_id}: {url} answered a body that is not JSON "
                               f"(expected an OpenAI chat-completions response)") from None
            if attempt < self.max_retries:
                self._wait(attempt, retry_after)
        raise LLMError(f"llm backend {self.backend_id}: {url} failed {self.max_retries + 1} times, last: {last}")


def _content(payload: dict, url: str) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"{url}: response has no choices[0].message.content (expected an OpenAI chat-completions "
                       f"response)") from None
    return (content or "").strip()
