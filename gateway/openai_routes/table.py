"""The simple routes served by the governed passthrough, and their handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from gateway.config.providers import OpenAIRoute
from gateway.exchange import ClientChannel
from gateway.openai_routes import passthrough
from gateway.openai_routes.passthrough import Route
from gateway.openai_routes.streams import COMPLETIONS, TRANSCRIPTS
from gateway.services import Services

Handler = Callable[[Services, ClientChannel], Awaitable[None]]

ROUTES: tuple[Route, ...] = (
    Route("/v1/completions", OpenAIRoute.COMPLETIONS, "/completions", stream=COMPLETIONS),
    Route("/v1/moderations", OpenAIRoute.MODERATIONS, "/moderations", default_model="omni-moderation-latest"),
    Route("/v1/images/generations", OpenAIRoute.IMAGES, "/images/generations", default_model="dall-e-2"),
    Route("/v1/images/edits", OpenAIRoute.IMAGES, "/images/edits", multipart=True, default_model="dall-e-2"),
    Route(
        "/v1/images/variations",
        OpenAIRoute.IMAGES,
        "/images/variations",
        multipart=True,
        default_model="dall-e-2",
    ),
    Route(
        "/v1/audio/transcriptions",
        OpenAIRoute.AUDIO,
        "/audio/transcriptions",
        multipart=True,
        stream=TRANSCRIPTS,
    ),
    Route("/v1/audio/translations", OpenAIRoute.AUDIO, "/audio/translations", multipart=True),
    Route("/v1/audio/speech", OpenAIRoute.AUDIO, "/audio/speech", streamed_answer=True),
)


def handlers() -> dict[str, Handler]:
    """Each route's handler by its path."""
    return {route.path: partial(passthrough.handle, route) for route in ROUTES}
