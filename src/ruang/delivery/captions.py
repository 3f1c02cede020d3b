"""A space's captions file (WebVTT), as the captioning process appends it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.responses import Response

from ruang.captions.webvtt import CAPTIONS_FILE, END_NOTE
from ruang.errors import not_found
from ruang.spaces.model import Space, State

GROWING_CACHE = "public, max-age=1"  # live: a cue may land any second
FINISHED_CACHE = "public, max-age=86400"  # ended, and its last cue is in: it never changes
CORS = {"Access-Control-Allow-Origin": "*"}  # a <track> of a player on another site may load it


def captions_path(spaces_dir: Path, space_id: str) -> Path:
    """Where a space's captions are kept (beside its parts)."""
    return spaces_dir / space_id / CAPTIONS_FILE


async def captions_response(spaces_dir: Path, space: Space) -> Response:
    """The space's WebVTT: 404 where no captions were made; cacheable once it is finished."""
    try:
        data = await asyncio.to_thread(captions_path(spaces_dir, space.id).read_bytes)
    except FileNotFoundError:
        raise not_found(f"Captions of space {space.id!r}") from None
    finished = space.state is State.ENDED and data.endswith(END_NOTE.encode())
    headers = {"Cache-Control": FINISHED_CACHE if finished else GROWING_CACHE, **CORS}
    return Response(data, media_type="text/vtt; charset=utf-8", headers=headers)
