"""The OpenAPI 3.1 document served at /openapi.json (hand-kept beside the routes it describes)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_SPACE_ID = {"name": "space_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
_CLIP_ID = {"name": "clip_id", "in": "path", "required": True, "schema": {"type": "string"}}
_TICKET = {"name": "ticket", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VISIBLE = "[^\\s\\x00-\\x1f\\x7f-\\x9f]"  # at least one character that shows
_ANY_JSON: dict[str, Any] = {
    "application/json": {"schema": {}}
}  # any JSON: only its type matters (CSRF)
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


# What any operation may answer besides its own codes: the fast path and the guard decide
# these before the route runs (docs/GUARD.md).
_COMMON = {
    "400": "bad_request: the URL, a header or the body is malformed (invalid_json: not a JSON "
    "object, or nested too deeply)",
    "429": "rate_limited: this source's budget for the request class is spent (Retry-After)",
    "503": "Shed under overload, draining, or the media process is restarting (Retry-After)",
}


def _op(
    summary: str,
    responses: dict[str, str],
    *,
    auth: bool = False,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    body_required: bool = False,
) -> dict[str, Any]:
    params = params if params is not None else [_SPACE_ID]
    codes = dict(responses)
    if any(p["name"] == "space_id" for p in params):
        codes.setdefault("404", "Unknown space")
    for code, text in _COMMON.items():
        codes.setdefault(code, text)
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "responses": {
            code: {
                "description": text,
                **(
                    {"content": {"application/json": {"schema": _ERROR}}} if code[0] in "45" else {}
                ),
            }
            for code, text in sorted(codes.items())
        },
    }
    if auth:
        op["security"] = _BEARER
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": body}
    return op


def _json_body(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return {"application/json": {"schema": schema}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Ruang",
        "version": "0.1.0",
        "description": "Live audio spaces: WHIP in, LL-HLS out, replay after. The links in "
        "answers (page_url, whip_url, listen_url, …) are under the server's public URL when it "
        "has one, else under the request's own Host when that is a sane host[:port] (else the "
        "default); cacheable answers carrying them say Vary: Host. Pages (text/html) carry a "
        "strict Content-Security-Policy, Referrer-Policy: no-referrer and nosniff.",
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "ruang_session"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "paths": {
        "/api/spaces": {
            "post": {
                **_op(
                    "Create a space (live at once, or scheduled with starts_at). With the "
                    "server's create key set (--create-key), only its holders may: "
                    "Authorization: Bearer <key>. Either way there are caps (docs/GUARD.md).",
                    {
                        "201": "The space, with host_token, whip_url, page_url, replay_url",
                        "400": "Not JSON",
                        "401": "create_key_required: this server needs its create key",
                        "403": "create_key_refused: not the server's create key",
                        "413": "Body too large",
                        "422": "Bad title, starts_at or tags",
                        "429": "too_many_spaces: this address or network has as many live or "
                        "scheduled spaces as it may (end one first); creating_too_fast: its "
                        "network created its share of the last minute (Retry-After)",
                        "503": "node_full: the server holds as many spaces as it can; "
                        "creation_busy: too many spaces created here in the last minute "
                        "(both with Retry-After)",
                    },
                    params=[],
                    body_required=True,
                    body=_json_body(
                        {
                            "title": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": 200,
                                "pattern": _VISIBLE,
                            },
                            "starts_at": {
                                "type": ["string", "null"],
                                "format": "date-time",
                                "minLength": 1,
                            },
                            "tags": {
                                "type": ["array", "null"],
                                "description": "Topic tags: at most 5, each at most 24 "
                                "characters (a leading # is dropped, repeats ignored)",
                                "maxItems": 5,
                                "items": {"type": "string", "maxLength": 24},
                            },
                            "visibility": {
                                "enum": ["public", "unlisted", None],
                                "default": "public",
                            },
                        },
                        required=["title"],
                    ),
                ),
                "security": [{}, {"bearer": []}],  # open unless the server has a create key
            }
        },
        "/api/spaces/{space_id}": {
            "get": _op(
                "A space: title, state, who is on stage, replay_url; once ended "
                "recording_url (one .m4a of the whole space), or, once the host deleted it, "
                "recording_deleted: true and neither URL; more for stage members, and for the "
                "host auto_end_at: when an abandoned space ends by itself (ISO 8601, null "
                "while someone is on stage)",
                {"200": "The space", "404": "Unknown space"},
            )
        },
        "/api/spaces/{space_id}/start": {
            "post": _op(
                "Start a scheduled space (harmless on a live one)",
                {
                    "200": "The space",
                    "401": "No token",
                    "403": "Not the host",
                    "409": "Ended",
                    "503": "node_full: no room for another full stage here (Retry-After)",
                },
                auth=True,
            )
        },
        "/api/spaces/{space_id}/end": {
            "post": _op(
                "End the space; its replay is final when this returns",
                {"200": "The space", "401": "No token", "403": "Not the host"},
                auth=True,
            )
        },
        "/api/spaces/{space_id}/recording": {
            "delete": _op(
                "Delete the space's recording (the host, once ended): its whole recorded "
                "folder goes (replay, segments, the recording, clips, captions), which answer "
                "410 recording_deleted from then on; the space's JSON says recording_deleted "
                "and has no replay_url or recording_url. Deleting again is harmless (204).",
                {
                    "204": "Deleted",
                    "401": "No token",
                    "403": "Not the host",
                    "404": "Unknown space",
                    "409": "not_ended: end the space first",
                },
                auth=True,
            )
        },
        "/api/spaces/{space_id}/clips": {
            "post": _op(
                "Cut a clip of 15–60 s (from the replay, or while live from its last 120 s): "
                "an .m4a cut at AAC frame boundaries without re-encoding, with its own page. "
                "The person is the listener ticket sent as Bearer token, or the session cookie "
                "(a JSON body from this server's own pages); 5 clips per person per 10 "
                "minutes, 500 per space",
                {
                    "201": "The clip: id, title, start_s, duration_s, page_url, file_url, "
                    "replay_at_url",
                    "401": "identity_required (no ticket, no session) or ticket_invalid",
                    "403": "blocked, or cross_site",
                    "404": "Unknown space",
                    "409": "not_started, or nothing_recorded",
                    "415": "json_required (with a session cookie)",
                    "422": "invalid_field, outside_recording or outside_window",
                    "429": "too_many_clips (Retry-After) or clips_full",
                    "410": "recording_deleted",
                    "503": "clip_busy: others are being cut, or clip_failed (Retry-After)",
                },
                auth=True,
                body=_json_body(
                    {
                        "start_s": {"type": "number", "minimum": 0},
                        "duration_s": {"type": "number", "minimum": 15, "maximum": 60},
                        "title": {"type": "string", "maxLength": 140},
                    }
                ),
            )
        },
        "/api/spaces/{space_id}/clips/{clip_id}": {
            "get": _op(
                "A clip as JSON (with space_title)",
                {"200": "The clip", "404": "Unknown space or clip", "410": "recording_deleted"},
                params=[_SPACE_ID, _CLIP_ID],
            )
        },
        "/api/spaces/{space_id}/clips/{clip_id}.m4a": {
            "get": _op(
                "A clip's audio (audio/mp4, AAC), immutable, with byte ranges (206; 416 outside)",
                {
                    "200": "The file",
                    "206": "A range of it",
                    "404": "Unknown space or clip",
                    "410": "recording_deleted",
                    "416": "range_not_satisfiable",
                },
                params=[_SPACE_ID, _CLIP_ID],
            )
        },
        "/podcast.xml": {
            "get": _op(
                "The public ended spaces as a podcast (RSS 2.0 with itunes: tags), newest 100 "
                "first, each recording an episode; ?tag= narrows to a topic",
                {"200": "The feed (application/rss+xml)", "422": "invalid_tag"},
                params=[
                    {
                        "name": "tag",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 24,
                            "pattern": _VISIBLE,
                        },
                    }
                ],
            )
        },
        "/api/spaces/{space_id}/events": {
            "get": _op(
                "The space's live events as Server-Sent Events (text/event-stream)",
                {
                    "200": "A short answer: `retry: 300`, then one `id:` + `data:` frame per "
                    "event after the client's last id (the Last-Event-ID header, or ?after=), "
                    "held up to 8 s until the next batch when there is none (then the client's "
                    "id is restated); the connection is then free, and EventSource reconnects. "
                    "Each data is JSON with `type` and `at` (unix s): state {state}, stage "
                    "{speaker, on_stage} or {speaker, muted}, speaking {speakers: [ids heard "
                    "now]}, listeners {count}, reaction {counts: {kind: n}, total} once a "
                    "second, request / hand (from the roles API), caption (reserved). "
                    "Cache-Control public, max-age=6 (max-age=1 when empty): the same bytes for "
                    "everyone with the same last id",
                    "404": "Unknown space",
                    "503": "Shed under overload: an EventSource gives up, so the page retries",
                },
                params=[
                    _SPACE_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer"},
                        "description": "The last event id seen (when Last-Event-ID cannot be set)",
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
            )
        },
        "/api/spaces/{space_id}/reactions": {
            "post": _op(
                "React (listeners): counted per second into one `reaction` event",
                {
                    "202": "Counted",
                    "400": "Not JSON",
                    "401": "No valid listener ticket (the bearer token is the ticket from join)",
                    "404": "Unknown space",
                    "422": "kind is not one of 👏 ❤️ 😂 🔥 🙌 😮",
                    "429": "Over this person's pace (5 at once, then one per 0.5 s) or this "
                    "source's budget",
                },
                auth=True,
                body=_json_body(
                    {"kind": {"type": "string", "enum": ["👏", "❤️", "😂", "🔥", "🙌", "😮"]}},
                    required=["kind"],
                ),
                body_required=True,
            )
        },
        "/api/spaces/{space_id}/calendar.ics": {
            "get": {
                **_op(
                    "The space as an iCalendar reminder (text/calendar): one VEVENT with UID, "
                    "DTSTAMP, DTSTART (the planned start, or when it went live), an hour's "
                    "DURATION, SUMMARY, URL of the listener page, CATEGORIES (its tags) and an "
                    "alarm 10 minutes before; cacheable (it never changes)",
                    {"200": "The .ics file", "404": "Unknown space"},
                ),
            }
        },
        "/api/spaces/{space_id}/timeline": {
            "get": {
                **_op(
                    "Who spoke when and the reactions, placed on the replay (seconds from its "
                    "start): duration_s, turns [{speaker, start_s, end_s}], reactions {bin_s, "
                    "bins [{t_s, total, counts}]} (at most 600 bins), speakers [{id, name, role, "
                    "spoke_s}]; while live it grows (cacheable 5 s), once ended it is fixed",
                    {"200": "The timeline", "404": "Unknown space"},
                ),
            }
        },
        "/api/spaces/{space_id}/captions.vtt": {
            "get": _op(
                "The space's live captions as WebVTT (text/vtt), appended as each utterance is "
                "transcribed; times are seconds since the space went live, as in its replay. "
                "Cacheable for a second while it can grow, a day once the space has ended",
                {"200": "The WebVTT file", "404": "Unknown space, or no captions were made"},
            )
        },
        "/api/spaces/{space_id}/join": {
            "post": _op(
                "Join as a listener: a ticketed HLS URL, or a place in the waiting room",
                {
                    "200": "listen_url (LL-HLS playlist, ticket in the path), ticket, "
                    "renew_after_s; post {ticket} again to renew without queueing",
                    "202": "Waiting room: position, estimated_wait_s, queue (post {queue} "
                    "again after Retry-After seconds)",
                    "403": "blocked: the session cookie sent is blocked in this space",
                    "404": "Unknown space",
                    "428": "Proof-of-work required (under pressure) or failed: solve pow "
                    "{challenge, difficulty} — a nonce such that SHA-256(challenge + ':' + nonce) "
                    "has difficulty leading zero bits — and post {pow: {challenge, nonce}} again "
                    "(docs/GUARD.md); people in line and ticket renewals are not asked",
                    "422": "invalid_field: ticket, queue or pow of the wrong type",
                    "429": "This source's join budget is spent: try again after Retry-After",
                    "503": "Shed under overload, or draining (the server is stopping): try "
                    "again after Retry-After",
                },
                body=_json_body(
                    {
                        "ticket": {"type": "string"},
                        "queue": {"type": "string"},
                        "pow": {
                            "type": "object",
                            "properties": {
                                "challenge": {"type": "string"},
                                "nonce": {"type": "string"},
                            },
                        },
                    }
                ),
            )
        },
        "/api/spaces/{space_id}/report": {
            "get": _op(
                "The host's incident report: per-second traffic evidence, incident windows with "
                "graded verdicts and reasons, chain heads (HTML, or JSON with ?format=json)",
                {"200": "Report", "401": "No token", "403": "Not the host"},
                auth=True,
            )
        },
        "/whip/{space_id}": {
            "post": _op(
                "WHIP (RFC 9725): publish with an SDP offer (Opus); sendrecv hears the others",
                {
                    "201": "SDP answer, Location of the session",
                    "400": "Malformed SDP or no audio",
                    "401": "No or wrong token",
                    "403": "Removed from the stage",
                    "409": "Stage full or space not live; on_stage_elsewhere: this person is "
                    "on stage from another tab or device (that session is untouched) — offer "
                    "again with ?take_over=1 to replace it",
                    "415": "Not application/sdp",
                    "503": "media_full: no room for another person on this server, or "
                    "media_unavailable: its media process is restarting (Retry-After)",
                },
                auth=True,
            )
        },
        "/whip/{space_id}/sessions/{session_id}": {
            "delete": _op(
                "WHIP: end the session",
                {"200": "Ended", "401": "No or wrong token", "404": "Unknown session"},
                auth=True,
                params=[_SPACE_ID, _SESSION_ID],
            ),
            "patch": _op(
                "WHIP trickle ICE: not taken (gather every candidate before the offer)",
                {"405": "trickle_not_supported (Allow: POST, DELETE, OPTIONS)"},
                params=[_SPACE_ID, _SESSION_ID],
            ),
        },
        "/hls/{space_id}/live.m3u8": {
            "get": _op(
                "LL-HLS live playlist (blocking reload with _HLS_msn/_HLS_part)",
                {
                    "200": "Playlist",
                    "400": "Bad query, or unknown parameters (cache_bust)",
                    "404": "No such space",
                    "503": "Part late",
                },
            )
        },
        "/hls/{space_id}/replay.m3u8": {
            "get": _op(
                "Replay: EVENT playlist while live (302 to a ticketed URL, the live rules); "
                "once ended, the VOD playlist with ENDLIST itself: public, no ticket, "
                "immutable, and its segments and init too, fetched as fast as a client likes "
                "(the per-source vod budget, docs/GUARD.md)",
                {
                    "200": "Playlist (ended: the VOD)",
                    "302": "Live: to the ticketed replay (a join on the caller's behalf)",
                    "404": "No replay",
                    "410": "recording_deleted: the host deleted the recording",
                },
            )
        },
        "/hls/{space_id}/recording.m4a": {
            "get": _op(
                "The whole space as one audio file (AAC in .m4a, audio/mp4), remuxed from the "
                "replay's segments without re-encoding, index first (+faststart), with title, "
                "date/creation_time, artist (the stage's names) and comment metadata; made "
                "on the first request, then served from disk with Content-Length, "
                "Accept-Ranges: bytes and Range requests. Its URL is the space's recording_url "
                "once ended.",
                {
                    "200": "The file",
                    "206": "The requested byte range",
                    "404": "Unknown space, or nothing was recorded",
                    "409": "not_ended: the space is still scheduled or live",
                    "410": "recording_deleted: the host deleted the recording",
                    "416": "range_not_satisfiable: the range is outside the file "
                    "(Content-Range: bytes */size)",
                },
            ),
            "head": _op(
                "The recording's headers (Content-Length), with GET's statuses",
                {
                    "200": "Headers",
                    "206": "A range's headers",
                    "404": "Unknown space, or nothing was recorded",
                    "409": "not_ended",
                    "410": "recording_deleted",
                    "416": "range_not_satisfiable",
                },
            ),
        },
        "/hls/{space_id}/t/{ticket}/{name}": {
            "get": _op(
                "Ticketed live media, as listed by listen_url's playlist: live.m3u8 (the rules "
                "of /hls/{space_id}/live.m3u8), init.mp4, parts and segments (immutable)",
                {
                    "200": "The playlist or media",
                    "400": "Bad query, or unknown parameters (cache_bust)",
                    "401": "ticket_expired",
                    "403": "ticket_invalid: forged or for another space",
                    "404": "No such space or media",
                    "503": "Part late",
                },
                params=[_SPACE_ID, _TICKET, _NAME],
            )
        },
        "/healthz": {"get": _op("Liveness", {"200": "ok"}, params=[])},
        "/openapi.json": {"get": _op("This document", {"200": "OpenAPI 3.1"}, params=[])},
        "/metrics": {"get": _op("Prometheus metrics", {"200": "Text format"}, params=[])},
    },
}

_SPEAKER_ID = {"name": "speaker_id", "in": "path", "required": True, "schema": {"type": "string"}}
_REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SESSION: list[dict[str, list[str]]] = [{"session": []}]
_CSRF = (
    "Cookie-authenticated: the body must be application/json and Origin/Sec-Fetch-Site, when "
    "sent, this server's own (415 json_required, 403 cross_site otherwise)."
)
# Refusals of the permission table (ruang.spaces.permissions), the same for every stage call.
_STAGE = {
    "401": "No stage token (or a bad one)",
    "403": "Not allowed for your role (see the README's permission table); removed",
    "404": "Unknown space, speaker or request",
}


def _stage_paths() -> dict[str, Any]:
    """Sessions, requests to speak and moderation (issue #9)."""
    s = "/api/spaces/{space_id}"
    who = [_SPACE_ID, _SPEAKER_ID]
    paths: dict[str, Any] = {
        "/api/session": {
            "post": {
                **_op(
                    "Choose a display name: sets the signed session cookie ruang_session "
                    "(HttpOnly, SameSite=Lax, Secure behind https; 30 days). No account. "
                    "Renaming keeps the identity. " + _CSRF,
                    {
                        "201": "{name}",
                        "403": "cross_site",
                        "415": "json_required",
                        "422": "Bad name",
                    },
                    params=[],
                    body_required=True,
                    body=_json_body(
                        {
                            "name": {
                                "type": "string",
                                "minLength": 1,
                                "pattern": _VISIBLE,
                                "description": "Cut to 60 characters",
                            }
                        },
                        required=["name"],
                    ),
                ),
            },
            "get": _op("Your session's name", {"200": "{name}", "404": "no_session"}, params=[]),
            "delete": _op(
                "Forget the session (clears the cookie). " + _CSRF,
                {"204": "Done", "403": "cross_site", "415": "json_required"},
                params=[],
                body=_ANY_JSON,
                body_required=True,
            ),
        },
        s + "/me": {
            "get": _op(
                "Your standing in the space (bearer token or session cookie): role (host, "
                "cohost, speaker, listener, anonymous), you (your seat), blocked, request "
                "(your request to speak) and, once approved, token and whip_url: your own "
                "stage credentials, handed to your session only",
                {"200": "{role, name, you?, blocked?, request?, token?, whip_url?}"},
            ),
            "patch": _op(
                "Name yourself (any stage member, the host too)",
                {"200": "Your seat", **_STAGE, "422": "Bad name"},
                auth=True,
                body=_json_body({"name": {"type": "string"}}),
            ),
        },
        s + "/requests": {
            "post": {
                **_op(
                    "Ask to speak (a listener's session). Asking again while pending answers "
                    "the same request (200). " + _CSRF,
                    {
                        "201": "{id, name, state: pending, asked_at}",
                        "200": "Your pending request",
                        "401": "session_required: choose a display name first",
                        "403": "blocked or removed in this space; cross_site",
                        "409": "already_on_stage; space_ended",
                        "415": "json_required",
                        "429": "too_many_requests: 3 asks per person per hour, 50 pending per "
                        "space (Retry-After)",
                    },
                    body=_json_body({}),
                    body_required=True,
                ),
                "security": _SESSION,
            },
            "get": _op(
                "The pending requests (host and co-hosts)",
                {"200": "{requests: [{id, name, state, asked_at}]}", **_STAGE},
                auth=True,
            ),
        },
        s + "/requests/mine": {
            "delete": {
                **_op(
                    "Take back your pending request. " + _CSRF,
                    {
                        "204": "Done",
                        "401": "session_required",
                        "403": "cross_site",
                        "404": "None",
                        "415": "json_required",
                    },
                    body=_ANY_JSON,
                    body_required=True,
                ),
                "security": _SESSION,
            }
        },
        s + "/requests/{request_id}/approve": {
            "post": _op(
                "Bring the asker up (host, co-hosts): they get a speaker seat and token, "
                "delivered to their session by GET …/me",
                {"200": "{id, state: approved, speaker}", **_STAGE, "409": "stage_full"},
                auth=True,
                params=[_SPACE_ID, _REQUEST_ID],
            )
        },
        s + "/requests/{request_id}/deny": {
            "post": _op(
                "Turn a request down (host, co-hosts)",
                {"200": "{id, state: denied}", **_STAGE},
                auth=True,
                params=[_SPACE_ID, _REQUEST_ID],
            )
        },
        s + "/speakers": {
            "post": _op(
                "Invite a speaker (host, co-hosts): a personal token and WHIP URL",
                {"201": "token, whip_url, invite_url", **_STAGE, "409": "Stage full (13)"},
                auth=True,
                body=_json_body({"name": {"type": "string"}}),
            )
        },
        s + "/speakers/{speaker_id}/mute": {
            "post": _op(
                "Mute (host, co-hosts: others; anyone: themselves) or unmute (only oneself: "
                "nobody unmutes someone else); enforced by the server's mixer",
                {"200": "The speaker", **_STAGE, "422": "muted must be true or false"},
                auth=True,
                params=who,
                body=_json_body({"muted": {"type": "boolean"}}),
            )
        },
        s + "/mute-all": {
            "post": _op(
                "Mute everyone the caller may mute (host, co-hosts)",
                {"200": "{muted: [ids]}", **_STAGE},
                auth=True,
            )
        },
        s + "/speakers/{speaker_id}/audience": {
            "post": _op(
                "Move back to the audience: off stage, token revoked, may ask again",
                {"200": "{audience: true, id}", **_STAGE, "409": "host_stays"},
                auth=True,
                params=who,
            )
        },
        s + "/speakers/{speaker_id}": {
            "delete": _op(
                "Remove: off stage, token revoked, may not ask to speak again here",
                {"200": "{removed: true, id}", **_STAGE, "409": "host_stays"},
                auth=True,
                params=who,
            )
        },
        s + "/speakers/{speaker_id}/block": {
            "post": _op(
                "Block: removed, and their session gets no new ticket (join 403 blocked) and "
                "may not ask again in this space",
                {"200": "{blocked: true, id}", **_STAGE, "409": "host_stays"},
                auth=True,
                params=who,
            )
        },
        s + "/speakers/{speaker_id}/role": {
            "post": _op(
                "Make a speaker co-host, or a co-host speaker (host only; at most 2 co-hosts)",
                {
                    "200": "The speaker",
                    **_STAGE,
                    "409": "cohosts_full; host_stays",
                    "422": "role must be cohost or speaker",
                },
                auth=True,
                params=who,
                body=_json_body({"role": {"enum": ["cohost", "speaker"]}}, required=["role"]),
                body_required=True,
            )
        },
        s + "/host": {
            "post": _op(
                "Hand the host role to a co-host (host only); the host becomes a co-host",
                {"200": "The new host", **_STAGE},
                auth=True,
                body=_json_body({"speaker": {"type": "string"}}, required=["speaker"]),
                body_required=True,
            )
        },
    }
    return paths


def _page_paths() -> dict[str, Any]:
    """The HTML pages (text/html, with a strict Content-Security-Policy)."""
    s = "/s/{space_id}"
    pages = {
        "/": ("The front page: create a space", []),
        s: ("The listener page", [_SPACE_ID]),
        s + "/replay": ("The replay page", [_SPACE_ID]),
        s + "/clips/{clip_id}": ("A clip's page", [_SPACE_ID, _CLIP_ID]),
        s + "/host": ("The host's studio (the host token in the fragment)", [_SPACE_ID]),
        s + "/speak": ("A speaker's studio (the invite token in the fragment)", [_SPACE_ID]),
    }
    return {
        path: {"get": _op(summary, {"200": "The page (text/html)"}, params=params)}
        for path, (summary, params) in pages.items()
    }


OPENAPI["paths"].update(_stage_paths())
OPENAPI["paths"].update(_page_paths())
