"""The default engine: CMU PocketSphinx from PyPI, with the US English model its wheel ships
(no download). About 0.25–0.45 s of CPU per second of speech on one core here."""

from __future__ import annotations

from ruang.captions.base import SAMPLE_RATE, Engine, Pcm16, Word

FRAMES_PER_S = 100  # pocketsphinx's default frame rate (-frate): segment times are in frames
FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "<unk>"}


class SphinxEngine(Engine):
    """PocketSphinx's continuous recogniser; word times from its segmentation."""

    name = "pocketsphinx"

    def __init__(self, model_dir: str = "") -> None:
        from pocketsphinx import Decoder

        options: dict[str, object] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        if model_dir:  # an operator's own acoustic model folder (hmm)
            options["hmm"] = model_dir
        self._decoder = Decoder(**options)

    def transcribe(self, pcm: Pcm16) -> list[Word]:
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        d.end_utt()
        if d.hyp() is None:
            return []
        words = []
        for seg in d.seg():
            text = seg.word.split("(")[0]  # "the(2)": an alternative pronunciation
            if text in FILLERS or text.startswith("++"):
                continue
            start = seg.start_frame / FRAMES_PER_S
            end = (seg.end_frame + 1) / FRAMES_PER_S
            words.append(Word(start, end, text))
        return words
