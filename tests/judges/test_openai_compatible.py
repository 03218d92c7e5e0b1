"""Tests for the openai-compatible judge against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panbench.errors import ConfigError, DataError
from panbench.judges import (
    WR_FIDELITY_RUBRIC,
    JudgeRequestError,
    OpenAICompatibleJudge,
    Rubric,
    make_judge,
    sample_frame_indices,
)
from tests.judges.conftest import FakeChatServer, Reply

KEY_ENV = "PANBENCH_TEST_JUDGE_KEY"
SECRET = "sk-test-not-a-real-key-123"
RUBRIC = Rubric(
    name="test-fidelity",
    version="1",
    text='Does the clip show "{prompt}"? Reply 0-3.',
    scale=(0, 3),
    frames=4,
)


def clip(seed: int = 0, t: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 12, 16, 3), dtype=np.uint8)


def make(server: FakeChatServer, tmp_path: Path, **options: object) -> OpenAICompatibleJudge:
    judge = make_judge(
        "openai-compatible",
        base_url=server.base_url,
        model="test-vlm",
        api_key_env=KEY_ENV,
        cache_dir=str(tmp_path / "cache"),
        backoff="0.5",
        **options,
    )
    assert isinstance(judge, OpenAICompatibleJudge)
    return judge


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def decode_png_url(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix) :], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_request_shape(chat_server: FakeChatServer, tmp_path: Path, key: str) -> None:
    frames = clip()
    judge = make(chat_server, tmp_path, max_tokens="12")
    score = judge.judge(frames, "push the red block left", RUBRIC)

    assert (score.value, score.raw, score.cached) == (2.0, "2", False)
    assert len(chat_server.requests) == 1
    req = chat_server.requests[0]
    assert req.path == "/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {key}"
    assert req.headers["Content-Type"] == "application/json"
    body = req.body
    assert body["model"] == "test-vlm"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 12
    system, user = body["messages"]
    assert system["role"] == "system" and isinstance(system["content"], str)
    assert user["role"] == "user"
    text, *images = user["content"]
    assert text == {
        "type": "text",
        "text": 'Does the clip show "push the red block left"? Reply 0-3.',
    }
    expected = frames[sample_frame_indices(len(frames), RUBRIC.frames)]
    assert len(images) == RUBRIC.frames
    for part, frame in zip(images, expected, strict=True):
        assert part["type"] == "image_url"
        np.testing.assert_array_equal(decode_png_url(part["image_url"]["url"]), frame)


def test_key_stays_secret(chat_server: FakeChatServer, tmp_path: Path, key: str) -> None:
    judge = make(chat_server, tmp_path)
    judge.judge(clip(), "open the drawer", WR_FIDELITY_RUBRIC)
    prov = judge.provenance()
    assert prov["kind"] == "openai-compatible" and prov["model"] == "test-vlm"
    assert prov["endpoint"] == f"{chat_server.base_url}/chat/completions"
    assert key not in json.dumps(prov)
    cached = list((tmp_path / "cache").rglob("*.json"))
    assert len(cached) == 1
    assert key not in cached[0].read_text()


def test_no_key_no_auth_header(
    chat_server: FakeChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    make(chat_server, tmp_path).judge(clip(), "x", RUBRIC)
    assert "Authorization" not in chat_server.requests[0].headers


def test_retries_429_and_500_honouring_retry_after(
    chat_server: FakeChatServer, tmp_path: Path, key: str
) -> None:
    chat_server.script = [
        Reply(429, {"error": "slow down"}, headers={"Retry-After": "7"}),
        Reply(500, {"error": "boom"}),
        Reply(content="3"),
    ]
    judge = make(chat_server, tmp_path)
    delays: list[float] = []
    judge._sleep = delays.append
    score = judge.judge(clip(), "x", RUBRIC)
    assert score.value == 3.0
    assert len(chat_server.requests) == 3
    # Retry-After wins on the first retry; then backoff * 2**1.
    assert delays == [7.0, 1.0]
    assert judge.stats["retries"] == 2
    bodies = [r.body for r in chat_server.requests]
    assert bodies[0] == bodies[1] == bodies[2]


def test_gives_up_after_max_retries(chat_server: FakeChatServer, tmp_path: Path) -> None:
    chat_server.script = [Reply(503, {"error": "down"}) for _ in range(5)]
    judge = make(chat_server, tmp_path, max_retries=2)
    delays: list[float] = []
    judge._sleep = delays.append
    with pytest.raises(JudgeRequestError, match=r"after 3 attempt\(s\).*HTTP 503"):
        judge.judge(clip(), "x", RUBRIC)
    assert len(chat_server.requests) == 3
    assert delays == [0.5, 1.0]


def test_no_retry_on_400(chat_server: FakeChatServer, tmp_path: Path) -> None:
    chat_server.script = [Reply(400, {"error": {"message": "image too large"}})]
    judge = make(chat_server, tmp_path)
    delays: list[float] = []
    judge._sleep = delays.append
    with pytest.raises(JudgeRequestError, match=r"HTTP 400.*image too large"):
        judge.judge(clip(), "x", RUBRIC)
    assert len(chat_server.requests) == 1
    assert delays == []
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_401_names_the_env_var_and_redacts_the_key(
    chat_server: FakeChatServer, tmp_path: Path, key: str
) -> None:
    chat_server.script = [Reply(401, {"error": f"invalid key {key}"})]
    with pytest.raises(JudgeRequestError) as info:
        make(chat_server, tmp_path).judge(clip(), "x", RUBRIC)
    assert KEY_ENV in str(info.value)
    assert key not in str(info.value)
    assert len(chat_server.requests) == 1


def test_connection_errors_are_retried(
    loopback_only: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = make_judge(
        "openai-compatible",
        base_url=f"http://127.0.0.1:{port}/v1",
        model="m",
        cache_dir=tmp_path,
        max_retries=2,
        backoff=0.25,
    )
    delays: list[float] = []
    judge._sleep = delays.append  # type: ignore[attr-defined]
    with pytest.raises(JudgeRequestError, match="connection error"):
        judge.judge(clip(), "x", RUBRIC)
    assert delays == [0.25, 0.5]


def test_cache_makes_reruns_free_and_identical(
    chat_server: FakeChatServer, tmp_path: Path, key: str
) -> None:
    chat_server.script = [Reply(content="Score: 1"), Reply(content="3")]
    clips = [clip(0), clip(1)]
    first = [make(chat_server, tmp_path).judge(c, "turn left", RUBRIC) for c in clips]
    assert [s.value for s in first] == [1.0, 3.0]
    assert len(chat_server.requests) == 2

    chat_server.default = "0"  # a new request would now get a different answer
    rerun_judge = make(chat_server, tmp_path)
    again = [rerun_judge.judge(c, "turn left", RUBRIC) for c in clips]
    assert len(chat_server.requests) == 2
    assert [(s.value, s.raw) for s in again] == [(s.value, s.raw) for s in first]
    assert all(s.cached for s in again)
    assert rerun_judge.stats == {"requests": 0, "cache_hits": 2, "retries": 0}

    # A new rubric version, prompt or frame is a new request.
    bumped = Rubric.from_dict({**RUBRIC.to_dict(), "version": "2"})
    assert rerun_judge.judge(clips[0], "turn left", bumped).value == 0.0
    assert rerun_judge.judge(clips[0], "turn right", RUBRIC).value == 0.0
    changed = clips[0].copy()
    changed[0, 0, 0, 0] ^= 1  # frame 0 is always sampled
    assert rerun_judge.judge(changed, "turn left", RUBRIC).value == 0.0
    assert len(chat_server.requests) == 5


def test_cache_key_ignores_endpoint_and_key(
    chat_server: FakeChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = clip()[sample_frame_indices(20, RUBRIC.frames)]
    monkeypatch.setenv(KEY_ENV, "one")
    a = make(chat_server, tmp_path).cache_key(frames, "x", RUBRIC)
    monkeypatch.setenv(KEY_ENV, "two")
    other = make_judge("openai-compatible", base_url="http://10.0.0.1:9/v1", model="test-vlm")
    assert isinstance(other, OpenAICompatibleJudge)
    assert other.cache_key(frames, "x", RUBRIC) == a
    tokens = make(chat_server, tmp_path, max_tokens=7)
    assert tokens.cache_key(frames, "x", RUBRIC) != a


def test_offline_miss_sends_nothing(chat_server: FakeChatServer, tmp_path: Path) -> None:
    judge = make(chat_server, tmp_path, offline="true")
    with pytest.raises(JudgeRequestError, match="offline"):
        judge.judge(clip(), "x", RUBRIC)
    assert chat_server.requests == []


def test_unparsable_reply_is_cached_and_fails_clearly(
    chat_server: FakeChatServer, tmp_path: Path
) -> None:
    chat_server.default = "The clip is lovely."
    for _ in range(2):
        with pytest.raises(DataError, match=r"one integer score in \[0, 3\]"):
            make(chat_server, tmp_path).judge(clip(), "x", RUBRIC)
    assert len(chat_server.requests) == 1


def test_malformed_response(chat_server: FakeChatServer, tmp_path: Path) -> None:
    chat_server.script = [Reply(200, b"<html>gateway</html>"), Reply(200, {"choices": []})]
    with pytest.raises(JudgeRequestError, match="JSON"):
        make(chat_server, tmp_path).judge(clip(), "x", RUBRIC)
    with pytest.raises(DataError, match=r"choices\[0\]\.message\.content"):
        make(chat_server, tmp_path).judge(clip(), "x", RUBRIC)


def test_options(tmp_path: Path) -> None:
    judge = make_judge(
        "openai-compatible",
        base_url="http://127.0.0.1:8000/v1/",
        model="Qwen/Qwen2.5-VL-7B-Instruct",
        max_tokens="32",
        timeout="2.5",
        max_retries=3,
        cache_dir=str(tmp_path),
    )
    assert isinstance(judge, OpenAICompatibleJudge)
    assert (judge.max_tokens, judge.timeout, judge.max_retries) == (32, 2.5, 3)
    assert judge.cache_dir == tmp_path
    assert judge.endpoint == "http://127.0.0.1:8000/v1/chat/completions"
    with pytest.raises(ConfigError, match=r"Unknown option 'modle'.*Did you mean: model.*base_url"):
        make_judge("openai-compatible", base_url="http://h/v1", modle="m")
    with pytest.raises(ConfigError, match="requires the option 'model'"):
        make_judge("openai-compatible", base_url="http://h/v1")
    with pytest.raises(ConfigError, match=r"max_tokens.*int.*'many'"):
        make_judge("openai-compatible", base_url="http://h/v1", model="m", max_tokens="many")
    with pytest.raises(ConfigError, match="http"):
        make_judge("openai-compatible", base_url="localhost:8000", model="m")


def test_provenance_hides_credentials_in_the_url() -> None:
    judge = make_judge(
        "openai-compatible", base_url="https://user:pw@api.example.com/v1?key=abc", model="m"
    )
    prov = judge.provenance()
    assert prov["endpoint"] == "https://api.example.com/v1/chat/completions"
    assert "pw" not in json.dumps(prov) and "abc" not in json.dumps(prov)


def test_default_cache_dir_under_panbench_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANBENCH_HOME", str(tmp_path))
    judge = make_judge("openai-compatible", base_url="http://h/v1", model="m")
    assert isinstance(judge, OpenAICompatibleJudge)
    assert judge.cache_dir == tmp_path / "judges"


def test_loopback_fixture_still_blocks_other_hosts(loopback_only: None, tmp_path: Path) -> None:
    judge = make_judge(
        "openai-compatible", base_url="http://10.0.0.1:9/v1", model="m", cache_dir=tmp_path
    )
    with pytest.raises(RuntimeError, match="must not use the network"):
        judge.judge(clip(), "x", RUBRIC)
