"""The engines by name: checked once at start-up, loaded only in the captioning process."""

from __future__ import annotations

import importlib.util

from ruang.captions.base import Engine, EngineUnavailable

ENGINES = ("pocketsphinx", "whisper")
DEFAULT_ENGINE = "pocketsphinx"


def check(name: str, model_dir: str = "") -> None:
    """Raise EngineUnavailable (with what to do) unless engine `name` can run here."""
    if name == "pocketsphinx":
        if importlib.util.find_spec("pocketsphinx") is None:
            raise EngineUnavailable(
                "captions need the pocketsphinx package (pip install pocketsphinx; its wheel "
                "carries the English model); or start with --captions off"
            )
    elif name == "whisper":
        from ruang.captions.whisper import check as check_whisper

        check_whisper(model_dir)
    else:
        raise EngineUnavailable(f"unknown captions engine {name!r}; choose one of {ENGINES}")


def load(name: str, model_dir: str = "") -> Engine:
    """A ready engine (loading a model takes a fraction of a second to a few seconds)."""
    check(name, model_dir)
    if name == "whisper":
        from ruang.captions.whisper import WhisperEngine

        return WhisperEngine(model_dir)
    from ruang.captions.sphinx import SphinxEngine

    return SphinxEngine(model_dir)
