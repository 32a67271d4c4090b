"""musicgen-server's HTTP API on Ray Serve: replicas of one model, each loaded once through the
Python package (`import musicgen`), scaled on ongoing requests.

    serve run musicgen_serve:app_builder model=/models/musicgen-small     # from deploy/ray/
    serve deploy serve_config.yaml                                         # on a running cluster

Routes, fields, defaults and JSON errors follow tools/musicgen-server/API.md (request_fields.py
checks the request as the C++ server does); every answer carries `X-Replica-Id` (host:replica),
so a client can tell which replica served it. README.md beside this file: multi-node use.
"""

import asyncio
import os
import socket
import struct
import tempfile
import uuid
from typing import Any, Dict, Iterator, Optional

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

import musicgen
from request_fields import FORMATS, Generation, RequestError, decode_body, parse_generation

MAX_BODY_BYTES = 16 * 1024 * 1024   # as the C++ server's --max-body-mb default
ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error", 405: "method_not_allowed_error",
               413: "payload_too_large_error", 415: "unsupported_media_type_error",
               500: "server_error", 503: "unavailable_error"}

api = FastAPI(title="musicgen (Ray Serve)", docs_url=None, redoc_url=None, openapi_url=None)


def error_response(status: int, message: str, kind: Optional[str] = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind or ERROR_TYPES.get(status, "server_error")}},
                        status_code=status)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI's own 404/405 answers, in the API's error format.
    what = {404: f"no route {request.url.path}; the routes are /health, /v1/models, /v1/music/generations",
            405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, what)


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(400, str(exc))


def wav_stream_header(sample_rate: int, channels: int) -> bytes:
    """A 16-bit PCM WAV header of unknown length (RIFF and data sizes 0xFFFFFFFF), as API.md says."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, channels,
                       sample_rate, sample_rate * channels * 2, channels * 2, 16, b"data", 0xFFFFFFFF)


def to_pcm16(chunk: np.ndarray) -> bytes:
    """float32 [channels, n] -> interleaved little-endian int16, clamped to [-1, 1]."""
    return (np.clip(chunk.T, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


@serve.deployment(
    # One model per replica; Serve adds replicas while each has more than target_ongoing_requests
    # requests in hand on average (generation is long: a small target keeps latency even).
    autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2,
                        "upscale_delay_s": 10, "downscale_delay_s": 120},
    max_ongoing_requests=4,
    ray_actor_options={"num_cpus": 1},
    health_check_period_s=10,
)
@serve.ingress(api)
class MusicGenServer:
    def __init__(self, model_dir: str, device: str = "auto", threads: Optional[int] = None,
                 max_duration: float = 120.0) -> None:
        self.model = musicgen.MusicGen(model_dir, device=device, threads=threads)
        self.model_id = os.path.basename(os.path.normpath(model_dir))
        self.max_duration = float(max_duration)
        context = serve.get_replica_context()
        self.replica_id = f"{socket.gethostname()}:{context.replica_id.unique_id}"

    def _headers(self, g: Optional[Generation] = None) -> Dict[str, str]:
        headers = {"X-Replica-Id": self.replica_id, "X-Request-Id": uuid.uuid4().hex}
        if g is not None:
            headers.update({"X-Seed": str(g.seed), "X-Audio-Duration": f"{g.duration:g}",
                            "X-Sample-Rate": str(self.model.sample_rate), "X-Channels": str(self.model.channels)})
        return headers

    @api.get("/health")
    async def health(self) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=self._headers())

    @api.get("/v1/models")
    async def models(self) -> JSONResponse:
        m = self.model
        return JSONResponse({"object": "list", "data": [{
            "id": self.model_id, "object": "model", "owned_by": "libmusicgen", "sample_rate": m.sample_rate,
            "channels": m.channels, "frame_rate": m.frame_rate, "melody": m.is_melody, "device": m.device,
            "max_duration": self.max_duration, "codec": False}]}, headers=self._headers())

    @api.post("/v1/music/generations")
    async def generations(self, request: Request) -> Response:
        try:
            return await self._generate(request)
        except RequestError as e:
            return JSONResponse(e.body(), status_code=e.status, headers=self._headers())
        except (ValueError, TypeError, musicgen.FormatError) as e:   # the package's argument checks
            return JSONResponse(RequestError(400, str(e)).body(), status_code=400, headers=self._headers())
        except musicgen.MusicGenError as e:
            return JSONResponse(RequestError(500, str(e), "server_error").body(), status_code=500,
                                headers=self._headers())

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestError(413, f"the body is {declared} bytes; at most {MAX_BODY_BYTES}", "payload_too_large_error")
        raw = bytearray()
        async for part in request.stream():
            raw += part
            if len(raw) > MAX_BODY_BYTES:
                raise RequestError(413, f"the body is over {MAX_BODY_BYTES} bytes", "payload_too_large_error")
        return bytes(raw)

    async def _generate(self, request: Request) -> Response:
        raw = await self._read_body(request)
        fields, melody = decode_body(request.headers.get("content-type", ""), raw)
        g = parse_generation(fields, model_id=self.model_id, max_duration=self.max_duration,
                             is_melody=self.model.is_melody, melody=melody)
        with tempfile.TemporaryDirectory(prefix="musicgen-serve-") as tmp:
            if melody is not None:
                suffix = os.path.splitext(melody[1])[1].lower() or ".wav"
                path = os.path.join(tmp, "melody" + suffix)
                with open(path, "wb") as f:
                    f.write(melody[0])
                g.kwargs["melody"] = path
            if g.stream:
                return self._stream(g)
            prompt = g.kwargs.pop("prompt")
            audio, sr = await asyncio.to_thread(self.model.generate, prompt, **g.kwargs)
            out = os.path.join(tmp, "out." + g.format)
            await asyncio.to_thread(musicgen.write_audio, out, audio[0], sr)
            with open(out, "rb") as f:
                data = f.read()
        return Response(data, media_type=FORMATS[g.format], headers=self._headers(g))

    def _stream(self, g: Generation) -> StreamingResponse:
        # Melody files are read before the first chunk, so the temporary folder may go after this.
        kwargs = dict(g.kwargs)
        if "melody" in kwargs:
            kwargs["melody"] = musicgen.read_audio(kwargs["melody"])
        prompt = kwargs.pop("prompt")
        kwargs.pop("normalize")   # streamed audio is the raw decoder output (API.md)
        sr, ch = self.model.sample_rate, self.model.channels

        def chunks() -> Iterator[bytes]:
            # Starlette iterates this in a worker thread and closes it when the client leaves:
            # leaving the stream() loop stops the generation.
            if g.format == "wav":
                yield wav_stream_header(sr, ch)
            for chunk in self.model.stream(prompt, **kwargs):
                yield to_pcm16(chunk)

        media = "audio/wav" if g.format == "wav" else f"audio/L16; rate={sr}; channels={ch}"
        return StreamingResponse(chunks(), media_type=media, headers=self._headers(g))


def app_builder(args: Dict[str, Any]) -> Any:
    """`serve run musicgen_serve:app_builder model=DIR [device=cpu] [threads=N] [max_duration=S]`,
    or import_path + args in a Serve config file (serve_config.yaml)."""
    if "model" not in args:
        raise ValueError("model=DIR is required: the MusicGen snapshot folder each replica loads")
    threads = args.get("threads")
    return MusicGenServer.bind(str(args["model"]), device=str(args.get("device", "auto")),
                               threads=int(threads) if threads is not None else None,
                               max_duration=float(args.get("max_duration", 120.0)))
