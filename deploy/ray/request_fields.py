"""The generation request of tools/musicgen-server/API.md, parsed and checked as the C++ server does:
the same fields, defaults, ranges and {"error": {"message", "type"}} answers. Plain Python (no Ray),
so it can be used and tested on its own."""
from __future__ import annotations

import email.parser
import email.policy
import json
import math
import secrets
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

MAX_PROMPT_BYTES = 4096
MAX_SCALE = 100.0          # MUSICGEN_MAX_SCALE (include/musicgen_common.h)
MAX_SEED = 2**63 - 1
FORMATS = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg"}
STREAM_FORMATS = ("wav", "pcm")
NORMALIZE = ("peak", "loudness", "clip", "none")


class RequestError(Exception):
    """An answer other than 200: status code, API.md error type and a message for the user."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def body(self) -> Dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind}}


def _bad(message: str) -> RequestError:
    return RequestError(400, message)


def _number(body: Dict[str, Any], name: str, default: float, low: float, high: float,
            low_open: bool = False) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"{name} must be a finite number, got {json.dumps(value)}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise _bad(f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value:g}")
    return float(value)


def _integer(body: Dict[str, Any], name: str, default: Optional[int], low: int, high: int) -> Optional[int]:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name} must be an integer, got {json.dumps(value)}")
    if value < low or value > high:
        raise _bad(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


def _string(body: Dict[str, Any], name: str, default: Optional[str]) -> Optional[str]:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise _bad(f"{name} must be a string, got {json.dumps(value)}")
    return value


def _boolean(body: Dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _bad(f"{name} must be true or false, got {json.dumps(value)}")
    return value


@dataclass
class Generation:
    """A checked request: the keyword arguments of MusicGen.generate plus how to answer."""
    kwargs: Dict[str, Any]
    format: str
    stream: bool
    seed: int
    duration: float


KNOWN_FIELDS = {"model", "prompt", "duration", "seed", "top_k", "top_p", "temperature", "cfg", "greedy",
                "format", "normalize", "chords", "notes", "bpm", "beats_per_chord", "stream"}


def parse_generation(body: Any, *, model_id: str, max_duration: float, is_melody: bool,
                     melody: Optional[Tuple[bytes, str]] = None) -> Generation:
    """Checks a decoded request body (a dict) against API.md; raises RequestError."""
    if not isinstance(body, dict):
        raise _bad(f"the request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - KNOWN_FIELDS)
    if unknown:
        raise _bad(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(sorted(KNOWN_FIELDS))}")
    model = _string(body, "model", None)
    if model is not None and model != model_id:
        raise RequestError(404, f"model {model!r} is not loaded; GET /v1/models lists the served one ({model_id!r})",
                           "not_found_error")
    prompt = _string(body, "prompt", "")
    if len(prompt.encode("utf-8", "surrogatepass")) > MAX_PROMPT_BYTES:
        raise _bad(f"prompt is {len(prompt.encode('utf-8', 'surrogatepass'))} bytes; at most {MAX_PROMPT_BYTES}")
    if "\0" in prompt:
        raise _bad("prompt must not contain NUL characters")
    duration = _number(body, "duration", 10.0, 0.0, max_duration, low_open=True)
    seed = _integer(body, "seed", None, 0, MAX_SEED)
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    stream = _boolean(body, "stream")
    fmt = _string(body, "format", "wav").lower()
    allowed = STREAM_FORMATS if stream else tuple(FORMATS)
    if fmt not in allowed:
        raise _bad(f"format must be one of {', '.join(allowed)}{' when streaming' if stream else ''}, got {fmt!r}")
    normalize = _string(body, "normalize", "peak")
    if normalize not in NORMALIZE:
        raise _bad(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    kwargs: Dict[str, Any] = dict(
        duration=duration, seed=seed,
        top_k=_integer(body, "top_k", 250, 0, 1 << 20),
        top_p=_number(body, "top_p", 0.0, 0.0, 1.0),
        temperature=_number(body, "temperature", 1.0, 0.0, MAX_SCALE, low_open=True),
        cfg=_number(body, "cfg", 3.0, 0.0, MAX_SCALE),
        greedy=_boolean(body, "greedy"),
        normalize=normalize,
    )
    if kwargs["top_k"] == 0 and kwargs["top_p"] == 0.0 and not kwargs["greedy"]:
        raise _bad("top_k=0 needs top_p > 0 (or greedy): nothing would limit the sampling")
    chords, notes = _string(body, "chords", None), _string(body, "notes", None)
    conditions = [n for n, v in (("melody", melody), ("chords", chords), ("notes", notes)) if v is not None]
    if len(conditions) > 1:
        raise _bad(f"give one melody condition, not {' and '.join(conditions)}")
    if conditions and not is_melody:
        raise _bad(f"{conditions[0]} needs a melody model (musicgen-melody*); {model_id!r} is not one")
    if chords is not None or notes is not None:
        kwargs["bpm"] = _number(body, "bpm", 120.0, 20.0, 400.0)
        kwargs["chords" if chords is not None else "notes"] = chords if chords is not None else notes
        if chords is not None:
            kwargs["beats_per_chord"] = _number(body, "beats_per_chord", 4.0, 0.0, 64.0, low_open=True)
    kwargs["prompt"] = prompt
    return Generation(kwargs=kwargs, format=fmt, stream=stream, seed=seed, duration=duration)


TEXT_FIELDS = {"model", "prompt", "format", "normalize", "chords", "notes"}


def _form_value(text: str) -> Any:
    # Form values are text: read them as the JSON type they stand for (5 -> 5, true -> True);
    # anything that is not JSON stays a string (prompt=lo-fi).
    try:
        return json.loads(text)
    except ValueError:
        return text


def decode_body(content_type: str, raw: bytes) -> Tuple[Dict[str, Any], Optional[Tuple[bytes, str]]]:
    """The request fields and the melody upload (bytes, file name) from a JSON or multipart body."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            return json.loads(raw.decode("utf-8")), None
        except (UnicodeDecodeError, ValueError) as e:
            raise _bad(f"malformed JSON body: {e}") from None
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        if not message.is_multipart():
            raise _bad("malformed multipart/form-data body (no boundary or no parts)")
        fields: Dict[str, Any] = {}
        melody = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if name == "melody":
                melody = (data, part.get_filename() or "melody")
            elif name == "request":
                try:
                    fields.update(json.loads(data.decode("utf-8")))
                except (UnicodeDecodeError, ValueError, TypeError) as e:
                    raise _bad(f"malformed JSON in the form field 'request': {e}") from None
            elif name in TEXT_FIELDS:
                fields[name] = data.decode("utf-8", "replace")
            elif name:
                fields[name] = _form_value(data.decode("utf-8", "replace"))
        return fields, melody
    raise RequestError(415, f"Content-Type must be application/json or multipart/form-data, not {kind or 'none'}",
                       "unsupported_media_type_error")
