"""The media process's view of all spaces: lifecycle, stage and WHIP sessions.

It owns every live space's pipeline and every peer session; the HTTP layer only translates
requests into calls here. Authorisation is checked here too, so no route can forget it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ruang.audience import REPORT_EVERY_S, AudienceBook
from ruang.captions.feed import CaptionFeed
from ruang.config import Config
from ruang.errors import (
    FULL_RETRY_AFTER_S,
    ApiError,
    conflict,
    forbidden,
    node_full,
    not_found,
    unauthorized,
)
from ruang.guard.creation import creation_gate
from ruang.hls.store import SpaceMediaStore
from ruang.live.capacity import Costs, Load, room_for_space, room_for_speaker
from ruang.live.eventfeed import BATCH_S, EventFeed
from ruang.live.events import EventLog
from ruang.live.moderation import Moderation
from ruang.live.pipeline import SpacePipeline
from ruang.live.reaper import EndLimits, Reaper
from ruang.media.buffer import InputBuffer
from ruang.rtc.ice import configure_host_addresses, is_loopback_only
from ruang.rtc.whip import PeerSession
from ruang.spaces.model import ID_PATTERN, Role, Space, Speaker, State, utcnow
from ruang.store.base import OWNER_RENEW_S, Store

if TYPE_CHECKING:
    from ruang.shared_audience import SharedAudience

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class Studio:
    """Spaces, speakers and sessions of one media process: the spaces stamped with its
    number `media` in the store."""

    def __init__(
        self,
        config: Config,
        db: Store,
        media: int = 0,
        costs: Costs | None = None,
        shared_audience: SharedAudience | None = None,
        captions: CaptionFeed | None = None,
    ) -> None:
        self.config = config
        self.captions = captions  # None: no captions here (--captions off, or no engine)
        self.db = db
        self.media = media
        self.costs = costs or Costs(config.media_budget, seats=config.max_on_stage)
        self.pipelines: dict[str, SpacePipeline] = {}
        self.sessions: dict[str, PeerSession] = {}
        self.audience = AudienceBook()
        self.events = EventLog()  # what pages hear of each space (issue #9)
        self.feed = EventFeed(
            self.events,
            config.spaces_dir,
            lambda: self.pipelines,
            self._speaking,
            self.audience.current,
        )
        self._feeding: asyncio.Task[None] | None = None
        self.moderation = Moderation(self)  # roles, requests to speak (issue #9)
        self.worker_load: dict[str, dict[str, Any]] = {}  # delivery workers' shedding reports
        self._loopback_only = is_loopback_only(config.ice_addresses)
        self._lock = asyncio.Lock()
        self._claims: asyncio.Task[None] | None = None
        self._shared_audience = shared_audience
        self._figures: asyncio.Task[None] | None = None
        # The store (SQLite on disk, or Redis over the network) is called on a thread of its
        # own, in order: the mixers' event loop never waits for the disk or the network.
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix=f"store-{media}")
        self.creation = creation_gate(config, db)
        limits = EndLimits(config.idle_end_s, config.scheduled_grace_s)
        self.reaper = Reaper(limits, self._open_spaces, self._stage_occupied, self.end_space)
        self._reaping: asyncio.Task[None] | None = None

    async def off_loop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking call (store, files) off the event loop, in order with the others."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._store_thread, functools.partial(fn, *args, **kwargs)
        )

    async def start(self) -> None:
        """Configure ICE and resume every space that was live when the process last stopped."""
        configure_host_addresses(self.config.ice_addresses)
        await self.off_loop(self.db.clear_on_stage)
        for state in (State.LIVE, State.SCHEDULED):
            for space in await self.off_loop(self.db.spaces_in_state, state):
                try:
                    await self._start_pipeline(space.id, live=state is State.LIVE)
                except Exception:  # one damaged space must not keep the others off air
                    log.exception("space %s could not be resumed; the others go on", space.id)
        if self.captions is not None:
            self.captions.start(self._caption)
        self._claims = asyncio.create_task(self._renew_claims())
        self._reaping = asyncio.create_task(self.reaper.run())
        self._feeding = asyncio.create_task(self._feed_events())
        if self._shared_audience is not None:
            self._figures = asyncio.create_task(self._read_shared_audience())

    def _caption(self, space_id: str, caption: dict[str, Any]) -> None:
        self.events.publish(space_id, "caption", caption)

    def _caption_space(self, space_id: str) -> None:
        """Caption a live space, if the node's cap leaves room (else it has none)."""
        pipeline = self.pipelines.get(space_id)
        if self.captions is not None and pipeline is not None:
            pipeline.captions = self.captions.attach(space_id)

    def _speaking(self, space_id: str) -> list[str]:
        pipeline = self.pipelines.get(space_id)
        return pipeline.stage.speaking() if pipeline is not None else []

    async def _feed_events(self) -> None:
        """Batch the spaces' events into their event files (live/eventfeed.py)."""
        while True:
            await asyncio.sleep(BATCH_S)
            try:
                batch = self.feed.step(time.time())
                if batch:  # small files, but the mixers' loop never waits for the disk
                    await asyncio.to_thread(self.feed.write, batch)
            except Exception:  # the stream must not stop for one bad batch
                log.exception("could not write the spaces' events")

    async def _read_shared_audience(self) -> None:
        """The figures of every node's listeners for the spaces that run here."""
        assert self._shared_audience is not None
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            now = time.time()
            try:
                figures = await asyncio.to_thread(
                    self._shared_audience.read, list(self.pipelines), now
                )
            except Exception as exc:
                log.warning("could not read the shared audience: %s", exc)
                continue
            self.audience.shared(figures, now)

    async def _renew_claims(self) -> None:
        """Tell the other nodes (through the shared store) which spaces run here, and what
        this process carries."""
        while True:
            try:
                await self.off_loop(self.db.claim, list(self.pipelines))
            except Exception as exc:  # a store hiccup must not stop the renewals
                log.warning("could not renew space ownership: %s", exc)
            await self._share_load()
            await asyncio.sleep(OWNER_RENEW_S)

    async def _share_load(self) -> None:
        """Tell the other nodes what this process carries (they place new spaces by it); at
        once after every change, so that a burst of creations spreads out."""
        try:
            await self.off_loop(self.db.report_load, self.media, self.statistics())
        except Exception as exc:  # placement falls back on the last report
            log.warning("could not share this process's load: %s", exc)

    async def _open_spaces(self) -> list[Space]:
        """The spaces this process runs, read off the event loop (for the reaper)."""
        ids = list(self.pipelines)
        found = await self.off_loop(lambda: [self.db.get_space(i) for i in ids])
        return [s for s in found if s is not None and s.state is not State.ENDED]

    def _stage_occupied(self, space_id: str) -> bool:
        return any(s.space_id == space_id for s in self.sessions.values())

    async def stop(self) -> None:
        """Hang up every session and stop every clock; live spaces stay live for a restart."""
        for task in (self._claims, self._figures, self._reaping, self._feeding):
            if task is not None:
                task.cancel()
        if self._reaping is not None:  # unwound before the pipelines stop under it
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaping
        for session in list(self.sessions.values()):
            await session.close()
        for pipeline in list(self.pipelines.values()):
            await pipeline.stop(end=False)
        self.pipelines.clear()
        if self.captions is not None:
            await asyncio.to_thread(self.captions.stop)
        self._store_thread.shutdown(wait=True)

    # -- lookups and permissions -----------------------------------------------------------
    async def space(self, space_id: str) -> Space:
        """The space, or 404."""
        space = (
            await self.off_loop(self.db.get_space, space_id) if ID_PATTERN.match(space_id) else None
        )
        if space is None:
            raise not_found(f"Space {space_id!r}")
        return space

    async def member(self, space_id: str, token: str | None) -> Speaker:
        """The stage member owning this bearer token in this space, or 401/403."""
        await self.space(space_id)
        if not token:
            raise unauthorized()
        speaker = await self.off_loop(self.db.speaker_by_token, space_id, token)
        if speaker is None:
            raise unauthorized("This token does not belong to this space.")
        if speaker.removed:
            raise forbidden("You were removed from this space's stage.")
        return speaker

    async def host(self, space_id: str, token: str | None) -> Speaker:
        """The host, or 401/403."""
        speaker = await self.member(space_id, token)
        if speaker.role is not Role.HOST:
            raise forbidden("Only the host can do this.")
        return speaker

    # -- capacity ----------------------------------------------------------------------------
    def load(self) -> Load:
        """What this process carries now."""
        return Load(self.media, len(self.pipelines), len(self.sessions))

    def statistics(self) -> dict[str, Any]:
        """Load and capacity, for placement (the delivery workers ask) and /metrics."""
        load = self.load()
        return {
            "media": self.media,
            "spaces": load.spaces,
            "speakers": load.speakers,
            "cores": round(load.cores(self.costs), 4),
            "budget": self.costs.budget,
            "full_stages": self.costs.full_stages,
            "room_for_space": room_for_space(self.costs, load),
            "room_for_speaker": room_for_speaker(self.costs, load),
        }

    def _refuse_if_full(self, counted: bool = False) -> None:
        """503 unless one more full stage fits (`counted`: the space's own silent pipeline is
        already among the load, as a scheduled space's is when it starts)."""
        load = self.load()
        if counted:
            load = Load(load.media, load.spaces - 1, load.speakers)
        if not room_for_space(self.costs, load):
            raise node_full(f"{self.costs.full_stages} full stages per media process")

    # -- lifecycle ---------------------------------------------------------------------------
    async def create_space(
        self,
        title: str,
        starts_at: datetime | None,
        key: str | None = None,
        address: str = "",
        tags: tuple[str, ...] = (),
        listed: bool = True,
    ) -> tuple[Space, str]:
        """A new space created from `address` with create key `key`, if the creation caps
        allow it (429/503, raised before anything starts) and this process has room for one
        more full stage (503); live at once unless scheduled. Returns it and the host token."""
        self._refuse_if_full()
        space, _host, token = await self.off_loop(
            self._admit_and_create, title, starts_at, key, address, tags, listed
        )
        # a scheduled space is on air with silence already, so players and caches warm up
        await self._start_pipeline(space.id, live=space.state is State.LIVE)
        await self._share_load()
        log.info("space %s created (%s): %r", space.id, space.state, title)
        return space, token

    def _admit_and_create(
        self,
        title: str,
        starts_at: datetime | None,
        key: str | None,
        address: str,
        tags: tuple[str, ...],
        listed: bool,
    ) -> tuple[Space, Speaker, str]:
        """The caps' check and the insert as one call on the store thread, so no other
        creation of this process comes between them."""
        network = self.creation.admit(key, address)
        return self.db.create_space(title, starts_at, address, network, tags, listed)

    async def start_space(self, space_id: str) -> Space:
        """Scheduled → live (a live space stays live; an ended one is a 409)."""
        space = await self.space(space_id)
        if space.state is State.ENDED:
            raise conflict("space_ended", "This space has ended; it cannot start again.")
        if space.state is State.SCHEDULED:
            self._refuse_if_full(counted=True)
            space = await self.off_loop(self.db.set_state, space_id, State.LIVE, utcnow())
            await self._start_pipeline(space_id)
            self.pipelines[space_id].go_live()
            self._caption_space(space_id)
            self.events.publish(space_id, "state", {"state": space.state.value})
        return space

    async def end_space(self, space_id: str) -> Space:
        """Live → ended: everyone leaves the stage, the replay is finalised before this returns."""
        async with self._lock:
            space = await self.space(space_id)
            if space.state is State.ENDED:
                return space
            for session in [s for s in self.sessions.values() if s.space_id == space_id]:
                await session.close()
            pipeline = self.pipelines.pop(space_id, None)
            if pipeline is not None:
                await pipeline.stop(end=True)
                if self.captions is not None:
                    self.captions.detach(space_id, pipeline.timeline_s)
            space = await self.off_loop(self.db.set_state, space_id, State.ENDED, utcnow())
            self.moderation.forget(space_id)
            log.info("space %s ended", space_id)
            self.events.publish(space_id, "state", {"state": space.state.value})
            await self._share_load()
            return space

    async def _start_pipeline(self, space_id: str, live: bool = True) -> None:
        if space_id in self.pipelines:
            return
        # made off the loop: it reads what a previous run left on disk and writes the header
        folder = self.config.spaces_dir / space_id
        pipeline = await self.off_loop(
            lambda: SpacePipeline(space_id, SpaceMediaStore(folder), live)
        )
        if space_id in self.pipelines:  # made twice at once (a start during a resume)
            return
        self.pipelines[space_id] = pipeline
        if live:
            self._caption_space(space_id)
        pipeline.start()
        # the first event of the space's stream in this process (also after a restart)
        self.events.publish(space_id, "state", {"state": "live" if live else "scheduled"})

    # -- stage -------------------------------------------------------------------------------
    async def invite(self, space_id: str, name: str) -> tuple[Speaker, str]:
        """A new speaker invitation, up to max_on_stage people including the host."""
        space = await self.space(space_id)
        if space.state is State.ENDED:
            raise conflict("space_ended", "This space has ended.")
        if await self.off_loop(self.db.count_speakers, space_id) >= self.config.max_on_stage:
            raise conflict(
                "stage_full",
                f"The stage holds {self.config.max_on_stage} people including the host; "
                "remove someone before inviting another speaker.",
            )
        return await self.off_loop(self.db.add_speaker, space_id, name, Role.SPEAKER)

    async def set_muted(self, space_id: str, speaker_id: str, muted: bool) -> Speaker:
        """Mute or unmute someone on stage; enforced by the mixer from its next tick."""
        if await self.off_loop(self.db.get_speaker, space_id, speaker_id) is None:
            raise not_found(f"Speaker {speaker_id!r}")
        await self.off_loop(self.db.update_speaker, space_id, speaker_id, muted=muted)
        pipeline = self.pipelines.get(space_id)
        if pipeline is not None:
            pipeline.set_muted(speaker_id, muted)
        self.events.publish(space_id, "stage", {"speaker": speaker_id, "muted": muted})
        speaker = await self.off_loop(self.db.get_speaker, space_id, speaker_id)
        assert speaker is not None
        return speaker

    async def remove(self, space_id: str, speaker_id: str) -> None:
        """Take a speaker off stage for good: their session ends, their token stops working."""
        speaker = await self.off_loop(self.db.get_speaker, space_id, speaker_id)
        if speaker is None or speaker.removed:
            raise not_found(f"Speaker {speaker_id!r}")
        if speaker.role is Role.HOST:
            raise conflict("host_stays", "The host cannot be removed; end the space instead.")
        await self.off_loop(self.db.update_speaker, space_id, speaker_id, removed=True)
        for session in [s for s in self.sessions.values() if s.speaker_id == speaker_id]:
            await session.close()

    # -- WHIP --------------------------------------------------------------------------------
    async def publish(
        self, space_id: str, token: str | None, offer: str, take_over: bool = False
    ) -> PeerSession:
        """Accept a WHIP offer from a stage member. While they are on stage from another tab
        or device, a second offer is refused (409 `on_stage_elsewhere`, the first session
        untouched) unless it asks to `take_over`: then it replaces the first once it is good."""
        speaker = await self.member(space_id, token)
        space = await self.space(space_id)
        if space.state is not State.LIVE:
            raise conflict(f"space_{space.state.value}", f"This space is {space.state.value}.")
        self._stage_room(space_id, speaker.id, take_over)  # refuse early, before any ICE work
        session = PeerSession(space_id, speaker.id, self._session_closed)
        buffer = InputBuffer()
        try:
            session.answer = await session.accept(offer, buffer, self._loopback_only)
            # Offers sent at once all passed the early check while they gathered ICE: check
            # again, and take the seat with no await in between, so none slips past a limit.
            replaced = self._stage_room(space_id, speaker.id, take_over)
        except ApiError:
            await session.close()
            raise
        pipeline = self.pipelines.get(space_id)
        if pipeline is None:  # the host ended the space while this offer was being answered
            await session.close()
            raise conflict("space_ended", "This space has ended.")
        sink = session.return_track.feed if session.return_track is not None else None
        pipeline.add_speaker(speaker.id, buffer, sink)
        pipeline.set_muted(speaker.id, speaker.muted)
        self.sessions[session.id] = session
        for old in replaced:  # only once the new offer is good: a bad one changes nothing
            await old.close()
        await self.off_loop(self.db.update_speaker, space_id, speaker.id, on_stage=True)
        self.reaper.stage_changed(space_id, True, time.time())
        self.events.publish(space_id, "stage", {"speaker": speaker.id, "on_stage": True})
        await self._share_load()
        log.info("%s: on stage", session.label)
        return session

    def _stage_room(self, space_id: str, speaker_id: str, take_over: bool) -> list[PeerSession]:
        """The sessions a new one of this speaker would replace, or the refusal: on stage in
        another tab (409 unless `take_over`), a full stage (409), a full process (503)."""
        others = [s for s in self.sessions.values() if s.space_id == space_id]
        replaced = [s for s in others if s.speaker_id == speaker_id]
        if replaced and not take_over:
            raise conflict(
                "on_stage_elsewhere",
                "You are on stage in another tab or device. Close it, or take over here "
                "(that one will be disconnected).",
            )
        if len(others) - len(replaced) >= self.config.max_on_stage:
            raise conflict("stage_full", f"{len(others)} people are already on stage.")
        if not replaced and not room_for_speaker(self.costs, self.load()):
            raise ApiError(
                503,
                "media_full",
                "This server has no room for another person on stage right now; the people "
                "already on stage keep theirs. Try again shortly.",
                {"Retry-After": str(FULL_RETRY_AFTER_S)},
            )
        return replaced

    async def unpublish(self, space_id: str, session_id: str, token: str | None) -> None:
        """WHIP DELETE: the session's owner (or the host, a co-host) hangs up."""
        caller = await self.member(space_id, token)
        session = self.sessions.get(session_id)
        if session is None or session.space_id != space_id:
            raise not_found(f"Session {session_id!r}")
        if caller.id != session.speaker_id and caller.role not in (Role.HOST, Role.COHOST):
            raise forbidden("This session belongs to someone else.")
        await session.close()

    async def _session_closed(self, session: PeerSession) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        if any(s.speaker_id == session.speaker_id for s in self.sessions.values()):
            return  # replaced by a newer session of theirs, already on the mix in its place
        pipeline = self.pipelines.get(session.space_id)
        if pipeline is not None:
            pipeline.remove_speaker(session.speaker_id)
        await self.off_loop(
            self.db.update_speaker, session.space_id, session.speaker_id, on_stage=False
        )
        self.events.publish(
            session.space_id, "stage", {"speaker": session.speaker_id, "on_stage": False}
        )
        occupied = self._stage_occupied(session.space_id)
        self.reaper.stage_changed(session.space_id, occupied, time.time())
        await self._share_load()
        log.info("%s: left the stage", session.label)
