"""The fake images and audio routes.

* ``POST /images/generations``, ``/images/edits`` (multipart: ``image``, ``prompt``, ``mask``),
  ``/images/variations`` (multipart, ``dall-e-2`` only): a small PNG generated from the prompt
  (:func:`png`, 8x8 of one colour), as ``b64_json`` or a URL; ``gpt-image-1`` always answers
  base64 with token usage and refuses ``response_format``. Sizes and ``n`` checked per model.
* ``POST /audio/transcriptions`` and ``/audio/translations`` (multipart ``file``, ``model``):
  the text is :func:`heard` the file's byte count; ``response_format`` json, text, srt, vtt or
  verbose_json (``timestamp_granularities[]`` read as repeated fields); ``stream`` (not on
  ``whisper-1``) sends ``transcript.text.delta`` events and ``transcript.text.done``.
* ``POST /audio/speech``: bytes in the asked ``response_format`` (a real header for each:
  ID3, OggS, ADTS, fLaC, RIFF/WAVE, raw PCM), 32 bytes per input character, sent in parts.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from typing import Any

import msgspec
from litestar import Request

from fake_providers.exchange import Exchange
from fake_providers.openai.errors import OpenAIError, invalid_value, missing_parameter
from fake_providers.openai.route_kit import Form, Refused, RouteKit
from fake_providers.reply import PlannedReply
from fake_providers.sse import data_frame
from fake_providers.tokens import text_tokens

_ENCODER = msgspec.json.Encoder()

SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("auto", "1024x1024", "1536x1024", "1024x1536"),
}
MOST_IMAGES = {"dall-e-2": 10, "dall-e-3": 1, "gpt-image-1": 10}
TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
SPEECH_FORMATS = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse")
SPEECH_PARTS = 4


def png(seed: str) -> bytes:
    """An 8x8 PNG of one colour derived from ``seed``."""
    red, green, blue = hashlib.sha256(seed.encode()).digest()[:3]
    rows = b"".join(b"\x00" + bytes((red, green, blue)) * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + " hundred" + (" " + _words(n % 100) if n % 100 else "")
    for size, name in ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand")):
        if n >= size:
            return _words(n // size) + " " + name + (" " + _words(n % size) if n % size else "")
    return str(n)


def heard(size: int) -> str:
    """What the fake hears in an audio file of ``size`` bytes: the count in words."""
    return f"This file has {_words(size)} bytes."


def speech(text: str, response_format: str) -> bytes:
    payload = hashlib.sha256(text.encode()).digest() * (len(text) + 1)
    body = payload[: 32 * max(1, len(text))]
    if response_format == "wav":
        fmt = struct.pack("<HHIIHH", 1, 1, 24000, 48000, 2, 16)
        return (
            b"RIFF"
            + struct.pack("<I", 36 + len(body))
            + b"WAVEfmt "
            + struct.pack("<I", 16)
            + fmt
            + b"data"
            + struct.pack("<I", len(body))
            + body
        )
    magic = {
        "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
        "opus": b"OggS\x00\x02",
        "aac": b"\xff\xf1\x50\x80",
        "flac": b"fLaC",
    }
    return magic.get(response_format, b"") + body


def _srt(text: str) -> str:
    return f"1\n00:00:00,000 --> 00:00:02,000\n{text}\n\n"


def _vtt(text: str) -> str:
    return f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{text}\n\n"


class MediaService:
    def __init__(self, kit: RouteKit) -> None:
        self.kit = kit

    # -- images ------------------------------------------------------------------------------
    def _images(self, exchange: Exchange, fields: dict[str, Any], model: str, prompt: str) -> bytes:
        refuse = self.kit.refuse
        sizes = SIZES.get(model, SIZES["dall-e-2"])
        size = fields.get("size") or sizes[-1 if model != "gpt-image-1" else 1]
        if size not in sizes:
            raise refuse(invalid_value("size", str(size), sizes), exchange)
        n = fields.get("n") or 1
        try:
            n = int(n)
        except (TypeError, ValueError):
            raise refuse(OpenAIError("Invalid 'n': expected an integer.", param="n"), exchange) from None
        most = MOST_IMAGES.get(model, 10)
        if not 1 <= n <= most:
            raise refuse(OpenAIError(f"Invalid 'n': must be between 1 and {most}.", param="n"), exchange)
        response_format = fields.get("response_format")
        if model == "gpt-image-1":
            if response_format is not None:
                raise refuse(
                    OpenAIError(
                        "Unknown parameter: 'response_format'.",
                        param="response_format",
                        code="unknown_parameter",
                    ),
                    exchange,
                )
            response_format = "b64_json"
        response_format = response_format or "url"
        if response_format not in ("url", "b64_json"):
            raise refuse(
                invalid_value("response_format", str(response_format), ("url", "b64_json")), exchange
            )
        data: list[dict[str, Any]] = []
        for index in range(n):
            image = png(f"{prompt}#{index}")
            item: dict[str, Any]
            if response_format == "b64_json":
                item = {"b64_json": base64.b64encode(image).decode("ascii")}
            else:
                item = {
                    "url": f"https://fake-providers.invalid/images/{hashlib.sha256(image).hexdigest()[:16]}.png"
                }
            if model == "dall-e-3":
                item["revised_prompt"] = prompt
            data.append(item)
        answer: dict[str, Any] = {"created": self.kit.ids.created(), "data": data}
        if model == "gpt-image-1":
            tokens = text_tokens(prompt)
            answer["usage"] = {
                "input_tokens": tokens,
                "output_tokens": 272 * n,
                "total_tokens": tokens + 272 * n,
                "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0},
            }
        exchange.input_tokens = text_tokens(prompt)
        return _ENCODER.encode(answer)

    async def generations(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            body = await kit.json(request, exchange)
            model = kit.model(body.get("model"), exchange, required=False) or "dall-e-2"
            exchange.model = model
            behaviour = kit.behaviour(model, exchange)
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt:
                raise kit.refuse(missing_parameter("prompt"), exchange)
            answer = self._images(exchange, body, model if behaviour.fault is None else "dall-e-2", prompt)
        except Refused as refused:
            return refused.reply
        return kit.answer(exchange, behaviour, render=lambda: answer)

    async def _form_images(self, request: Request[Any, Any, Any], *, edit: bool) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            form = await kit.form(request, exchange)
            model = kit.model(form.text("model"), exchange, required=False) or "dall-e-2"
            exchange.model = model
            behaviour = kit.behaviour(model, exchange)
            image = form.file("image") or form.file("image[]")
            if image is None:
                raise kit.refuse(missing_parameter("image"), exchange)
            prompt = form.text("prompt") or ""
            if edit and not prompt:
                raise kit.refuse(missing_parameter("prompt"), exchange)
            if not edit and behaviour.fault is None and model != "dall-e-2":
                raise kit.refuse(
                    OpenAIError("Invalid model. The model argument should be left blank.", param="model"),
                    exchange,
                )
            fields = {name: values[0] for name, values in form.fields.items()}
            seed = prompt or hashlib.sha256(image[2]).hexdigest()
            served = model if behaviour.fault is None else "dall-e-2"
            answer = self._images(exchange, fields, served, seed)
        except Refused as refused:
            return refused.reply
        return kit.answer(exchange, behaviour, render=lambda: answer)

    async def edits(self, request: Request[Any, Any, Any]) -> PlannedReply:
        return await self._form_images(request, edit=True)

    async def variations(self, request: Request[Any, Any, Any]) -> PlannedReply:
        return await self._form_images(request, edit=False)

    # -- audio -------------------------------------------------------------------------------
    async def transcriptions(self, request: Request[Any, Any, Any]) -> PlannedReply:
        return await self._transcribe(request, translate=False)

    async def translations(self, request: Request[Any, Any, Any]) -> PlannedReply:
        return await self._transcribe(request, translate=True)

    async def _transcribe(self, request: Request[Any, Any, Any], *, translate: bool) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            form = await kit.form(request, exchange)
            model = kit.model(form.text("model"), exchange)
            behaviour = kit.behaviour(model, exchange)
            upload = form.file("file")
            if upload is None:
                raise kit.refuse(missing_parameter("file"), exchange)
            response_format = form.text("response_format") or "json"
            if response_format not in TRANSCRIPT_FORMATS:
                raise kit.refuse(
                    invalid_value("response_format", response_format, TRANSCRIPT_FORMATS), exchange
                )
            stream = (form.text("stream") or "").lower() == "true"
            if stream and (translate or model == "whisper-1"):
                raise kit.refuse(
                    OpenAIError(f"Streaming is not supported for the model {model}.", param="stream"),
                    exchange,
                )
            granularities = form.fields.get("timestamp_granularities[]", [])
        except Refused as refused:
            return refused.reply
        text = heard(len(upload[2]))
        tokens = max(1, len(upload[2]) // 100)
        usage = {
            "type": "tokens",
            "input_tokens": tokens,
            "output_tokens": text_tokens(text),
            "total_tokens": tokens + text_tokens(text),
        }
        exchange.input_tokens = tokens

        def whole() -> bytes:
            if response_format == "text":
                return (text + "\n").encode()
            if response_format == "srt":
                return _srt(text).encode()
            if response_format == "vtt":
                return _vtt(text).encode()
            if response_format == "verbose_json":
                verbose: dict[str, Any] = {
                    "task": "translate" if translate else "transcribe",
                    "language": "english",
                    "duration": 2.0,
                    "text": text,
                    "segments": [{"id": 0, "start": 0.0, "end": 2.0, "text": text}],
                }
                if "word" in granularities:
                    verbose["words"] = [
                        {"word": word, "start": i * 0.2, "end": i * 0.2 + 0.2}
                        for i, word in enumerate(text.split())
                    ]
                return _ENCODER.encode(verbose)
            answer: dict[str, Any] = {"text": text}
            if model != "whisper-1":
                answer["usage"] = usage
            return _ENCODER.encode(answer)

        def events() -> list[bytes]:
            out = [
                data_frame({"type": "transcript.text.delta", "delta": word + " "}) for word in text.split()
            ]
            out.append(data_frame({"type": "transcript.text.done", "text": text, "usage": usage}))
            return out

        content_type = "text/plain; charset=utf-8" if response_format in ("text", "srt", "vtt") else None
        if stream:
            return kit.answer(exchange, behaviour, render=whole, stream=events)
        return kit.answer(exchange, behaviour, render=whole, content_type=content_type)

    async def speech(self, request: Request[Any, Any, Any]) -> PlannedReply:
        kit = self.kit
        try:
            exchange = kit.start(request)
            body = await kit.json(request, exchange)
            model = kit.model(body.get("model"), exchange)
            behaviour = kit.behaviour(model, exchange)
            text = body.get("input")
            if not isinstance(text, str) or not text:
                raise kit.refuse(missing_parameter("input"), exchange)
            if len(text) > 4096:
                raise kit.refuse(
                    OpenAIError(
                        "Invalid 'input': string too long. Expected a string with maximum length 4096.",
                        param="input",
                    ),
                    exchange,
                )
            voice = body.get("voice")
            if voice is None:
                raise kit.refuse(missing_parameter("voice"), exchange)
            if voice not in VOICES:
                raise kit.refuse(invalid_value("voice", str(voice), VOICES), exchange)
            response_format = body.get("response_format") or "mp3"
            if response_format not in SPEECH_FORMATS:
                raise kit.refuse(
                    invalid_value("response_format", str(response_format), tuple(SPEECH_FORMATS)), exchange
                )
        except Refused as refused:
            return refused.reply
        audio = speech(text, response_format)
        step = -(-len(audio) // SPEECH_PARTS)
        parts = [audio[i : i + step] for i in range(0, len(audio), step)]
        return kit.answer(
            exchange,
            behaviour,
            render=lambda: audio,
            stream=lambda: parts,
            content_type=SPEECH_FORMATS[response_format],
        )


__all__ = ["Form", "MediaService", "heard", "png", "speech"]
