"""A judge behind any OpenAI-compatible chat-completions endpoint with image input, cached on disk.

Works with a local vLLM or llama.cpp server running an open vision-language model, or a hosted
API. Only the standard library speaks HTTP here (panbench does not depend on ``openai`` or
``httpx``). Every reply is cached under the content hash of its request, so a rerun sends
nothing and scores the same.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from panbench.errors import ConfigError, DataError, PanbenchError
from panbench.io import atomic_write_json
from panbench.judges.base import (
    Judge,
    Option,
    Rubric,
    Score,
    encode_png,
    frames_digest,
    judges_home,
    parse_score,
)

__all__ = ["JudgeRequestError", "OpenAICompatibleJudge"]

DEFAULT_SYSTEM = "You are a careful video evaluation assistant."
# Bumped when the stored entry or the key derivation changes, so old entries are not misread.
CACHE_FORMAT = 1
MAX_DELAY_S = 60.0


class JudgeRequestError(PanbenchError):
    """The judge's endpoint refused a request, or could not be reached after every retry."""


class OpenAICompatibleJudge(Judge):
    """Judges clips with a vision-language model behind an OpenAI-compatible chat endpoint.

    The request follows WR-Arena's: a system message, then one user message holding the
    rubric text (prompt filled in) followed by the sampled frames as base64 PNG data URLs in
    ``image_url`` parts, at temperature 0.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``; ``/chat/completions`` is
            appended.
        model: the model name the server expects.
        api_key_env: environment variable holding the API key; unset or empty sends no
            ``Authorization`` header (local servers need none). The key never enters
            provenance, messages or cache keys.
        max_tokens: reply length limit.
        timeout: seconds per HTTP request.
        max_retries: retries after a 429, a 5xx or a connection error.
        backoff: first retry delay in seconds, doubled on each retry (at most 60 s); a
            ``Retry-After`` header overrides it.
        cache_dir: where replies are cached (default ``$PANBENCH_HOME/judges``).
        system: the system message.
        offline: never send a request; a cache miss raises :class:`JudgeRequestError`.
    """

    kind: ClassVar[str] = "openai-compatible"
    options: ClassVar[tuple[Option, ...]] = (
        Option("base_url", str, "API root, e.g. http://127.0.0.1:8000/v1", required=True),
        Option("model", str, "model name the server expects", required=True),
        Option("api_key_env", str, "env var holding the API key", default="OPENAI_API_KEY"),
        Option("max_tokens", int, "reply length limit", default=64),
        Option("timeout", float, "seconds per HTTP request", default=120.0),
        Option("max_retries", int, "retries on 429, 5xx and connection errors", default=5),
        Option("backoff", float, "first retry delay (s), doubled per retry", default=1.0),
        Option("cache_dir", Path, "reply cache (default $PANBENCH_HOME/judges)", default=None),
        Option("system", str, "system message", default=DEFAULT_SYSTEM),
        Option("offline", bool, "fail on a cache miss instead of sending", default=False),
    )

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 64,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        cache_dir: str | os.PathLike[str] | None = None,
        system: str = DEFAULT_SYSTEM,
        offline: bool = False,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"Expected base_url to be an http(s) URL such as http://127.0.0.1:8000/v1, "
                f"but got {base_url!r}."
            )
        if not model:
            raise ConfigError("Expected a model name for the openai-compatible judge.")
        if max_tokens < 1 or timeout <= 0 or max_retries < 0 or backoff < 0:
            raise ConfigError(
                "Expected max_tokens >= 1, timeout > 0, max_retries >= 0 and backoff >= 0, but "
                f"got {max_tokens}, {timeout}, {max_retries} and {backoff}."
            )
        self.base_url = base_url
        # Requests keep the query (some gateways need ?api-version=...); provenance does not.
        self._url = urllib.parse.urlunsplit(
            (
                parsed.scheme,
                parsed.netloc,
                parsed.path.rstrip("/") + "/chat/completions",
                parsed.query,
                "",
            )
        )
        self.model = model
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else judges_home()
        self.system = system
        self.offline = offline
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0}
        # Replaced in tests to record the delays instead of waiting.
        self._sleep: Callable[[float], None] = time.sleep

    @property
    def endpoint(self) -> str:
        """The chat-completions URL without credentials, query or fragment."""
        parts = urllib.parse.urlsplit(self.base_url)
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        root = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return root.rstrip("/") + "/chat/completions"

    def provenance(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "endpoint": self.endpoint,
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
            "system_sha256": hashlib.sha256(self.system.encode("utf-8")).hexdigest(),
        }

    # ------------------------------------------------------------------ request and cache
    def build_request(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> dict[str, Any]:
        """The chat-completions body for already-sampled frames uint8 [N, H, W, 3]."""
        images = [
            {
                "type": "image_url",
                "image_url": {
                    "url": "data:image/png;base64,"
                    + base64.b64encode(encode_png(frame)).decode("ascii")
                },
            }
            for frame in frames
        ]
        return {
            "model": self.model,
            "messages": self._messages(rubric.render(prompt), images),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
        }

    def _messages(self, text: str, images: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": [{"type": "text", "text": text}, *images]},
        ]

    def cache_key(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> str:
        """The hex sha256 naming the cache entry of this request.

        Hashes the canonical request (model, messages, temperature, max_tokens) with every
        image replaced by the sha256 of its pixels (so the key does not depend on the PNG
        encoder's version), plus the rubric hash. Neither the endpoint nor the key enters it.
        """
        images = [{"type": "image_url", "sha256": frames_digest(frame)} for frame in frames]
        canonical = {
            "cache_format": CACHE_FORMAT,
            "model": self.model,
            "messages": self._messages(rubric.render(prompt), images),
            "temperature": 0.0,
            "max_tokens": self.max_tokens,
            "rubric": rubric.hash(),
        }
        blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _read_cache(self, path: Path) -> str | None:
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            reply = entry["reply"]
            if not isinstance(reply, str):
                raise TypeError("reply is not a string")
        except (OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(
                f"Ignoring unreadable judge cache entry {path} ({err}); asking again.",
                stacklevel=3,
            )
            return None
        return reply

    def _score(self, frames: np.ndarray, prompt: str, rubric: Rubric) -> Score:
        key = self.cache_key(frames, prompt, rubric)
        path = self.cache_path(key)
        reply = self._read_cache(path)
        if reply is not None:
            self.stats["cache_hits"] += 1
            return Score(parse_score(reply, rubric), reply, cached=True)
        if self.offline:
            raise JudgeRequestError(
                f"No cached judgement {path} and the judge is offline; rerun with offline=false "
                f"to ask {self.endpoint}."
            )
        body = self.build_request(frames, prompt, rubric)
        response = self._post(body)
        reply = _reply_text(response)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The reply is stored before parsing, so a reply without a score is not paid for twice.
        atomic_write_json(
            path,
            {
                "cache_format": CACHE_FORMAT,
                "key": key,
                "endpoint": self.endpoint,
                "model": self.model,
                "rubric": rubric.tag,
                "rubric_sha256": rubric.hash(),
                "prompt": prompt,
                "frames_sha256": [frames_digest(f) for f in frames],
                "reply": reply,
                "response": response,
            },
        )
        return Score(parse_score(reply, rubric), reply, cached=False)

    # ------------------------------------------------------------------ HTTP
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return text.replace(key, "***") if key else text

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            self.stats["requests"] += 1
            request = urllib.request.Request(
                self._url, data=data, headers=self._headers(), method="POST"
            )
            retry_after: str | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
                return self._decode(payload)
            except urllib.error.HTTPError as err:
                status, payload = err.code, err.read()
                retry_after = err.headers.get("Retry-After") if err.headers else None
                what = f"HTTP {status}: {self._excerpt(payload)}"
                if status != 429 and status < 500:
                    hint = (
                        f" Is ${self.api_key_env} set to a valid key?"
                        if status in (401, 403)
                        else ""
                    )
                    raise JudgeRequestError(
                        f"The judge endpoint {self.endpoint} refused the request with {what}{hint}"
                    ) from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                what = f"connection error: {self._redact(str(getattr(err, 'reason', err)))}"
            if attempt >= self.max_retries:
                raise JudgeRequestError(
                    f"The judge endpoint {self.endpoint} failed after {attempt + 1} attempt(s); "
                    f"last: {what}"
                )
            delay = _retry_after_seconds(retry_after)
            if delay is None:
                delay = min(self.backoff * 2**attempt, MAX_DELAY_S)
            attempt += 1
            self.stats["retries"] += 1
            self._sleep(delay)

    def _excerpt(self, payload: bytes, limit: int = 300) -> str:
        text = self._redact(payload.decode("utf-8", errors="replace")).strip()
        return text if len(text) <= limit else text[:limit] + "..."

    def _decode(self, payload: bytes) -> dict[str, Any]:
        try:
            response = json.loads(payload)
        except ValueError:
            raise JudgeRequestError(
                f"Expected a JSON chat-completions response from {self.endpoint}, but got "
                f"{self._excerpt(payload)!r}."
            ) from None
        if not isinstance(response, dict):
            raise JudgeRequestError(
                f"Expected a JSON object from {self.endpoint}, but got {self._excerpt(payload)!r}."
            )
        return response


def _reply_text(response: dict[str, Any]) -> str:
    """``choices[0].message.content`` as text (servers may send a list of text parts)."""
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        excerpt = json.dumps(response)[:300]
        raise DataError(
            f"Expected a chat-completions response with choices[0].message.content, but got "
            f"{excerpt}."
        ) from None
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise DataError(f"Expected the reply content to be text, but got {content!r}.")
    return content


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_DELAY_S * 5)
