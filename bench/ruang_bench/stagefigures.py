"""What the steps of `ruang bench stage` say about a node: stages per core and per node, which
steps met issue #8's conditions, and the one-line summary."""

from __future__ import annotations

from typing import Any

from ruang_bench.s2s import GOAL_ADDED_S

RETURN_SHARE_OK = 0.95  # of the mix-minus frames owed to the speakers, for a "good" step
ANCHORS = {  # DESIGN §6
    "server_cores_per_full_stage": {"today": 0.78, "goal_at_most": 0.35},
    "idle_space_cores": {"today": 0.065, "goal_at_most": 0.005},
    "full_stages_per_core": {"goal_at_least": 2},
    "added_s2s_delay_s": {"goal_at_most": GOAL_ADDED_S},
}


def capacity(empty_cores: float, rows: list[dict[str, Any]], nproc: int) -> dict[str, Any]:
    """Stages per node: the most that ran with no late tick here (the speakers sharing the
    cores), and what the CPU per stage at that step would allow if every core were the
    server's (the speakers elsewhere, the spaces spread over the cores). Without a clean step,
    the first step's CPU is given, marked by its late ticks. `good_stages` is stricter: no
    late tick, at least RETURN_SHARE_OK of the return frames and the added delay within the
    goal (issue #8's conditions, CPU aside)."""
    clean = [r for r in rows if r["late_ticks"] == 0]
    out: dict[str, Any] = {
        "clean_stages": clean[-1]["stages"] if clean else 0,
        "good_stages": 0,
    }
    for r in rows:
        if not (r["late_ticks"] == 0 and _return_ok(r) and _delay_ok(r)):
            break
        out["good_stages"] = r["stages"]
    ref = clean[-1] if clean else (rows[0] if rows else None)
    if ref is None:
        return out
    above = ref["server_cores_per_stage_above_empty"]
    out["at_stages"] = ref["stages"]
    out["late_ticks_there"] = ref["late_ticks"]
    out["server_cores_per_stage"] = ref["server_cores_per_stage"]
    out["server_cores_per_stage_above_empty"] = above
    if above > 0:
        out["stages_per_core"] = round(1 / above, 2)
        out["stages_per_node_by_cpu"] = int(max(0.0, nproc - empty_cores) / above)
    return out


def _return_ok(row: dict[str, Any]) -> bool:
    share = row.get("speakers", {}).get("return_share")
    return share is None or share >= RETURN_SHARE_OK


def _delay_ok(row: dict[str, Any]) -> bool:
    added = row.get("s2s", {}).get("added_by_server_s")  # unknown (no baseline): not good
    return added is not None and bool(added["p50"] <= GOAL_ADDED_S)


def summary(r: dict[str, Any]) -> str:
    """One line: stages, CPU per stage beside its anchor, delay, quiet-space cost, load."""
    cap, rows, idle = r["capacity"], r["ramp"], r["idle"]
    what = "full stages" if r["full_stage"] else f"stages of {r['people_per_stage']}"
    stop = r["stopped_because"]
    text = (
        f"stage ({r['pattern']}): {cap['clean_stages']} {what} without late ticks, "
        f"{cap['good_stages']} also with >= 95 % return frames and the added delay within "
        f"the goal (stopped: {stop})"
        if rows
        else f"stage: no ramp ({stop})"
    )
    if "server_cores_per_stage" in cap:
        late = f", {cap['late_ticks_there']} late ticks" if cap["late_ticks_there"] else ""
        text += (
            f"; server {cap['server_cores_per_stage']:.3f} cores per stage at {cap['at_stages']}"
            f"{late} ({cap['server_cores_per_stage_above_empty']:.3f} above an empty server: "
            f"{cap.get('stages_per_core', 0)} per core; today 0.78, goal <= 0.35)"
        )
    added = rows[0]["s2s"].get("added_by_server_s") if rows else None
    if added:
        text += f"; added s2s p50 {added['p50'] * 1000:.0f} ms at 1 stage"
        last = rows[-1]["s2s"].get("added_by_server_s")
        if len(rows) > 1 and last:
            text += f", {last['p50'] * 1000:.0f} ms at {rows[-1]['stages']}"
        text += f" (goal <= {GOAL_ADDED_S * 1000:.0f})"
    if "cores_per_space" in idle:
        text += (
            f"; quiet space {idle['cores_per_space']:.4f} cores each ({idle['spaces']} spaces; "
            "today 0.065, goal <= 0.005)"
        )
    if rows:
        text += f"; speakers {rows[0]['speakers_cores_per_stage']:.2f} cores per stage"
    return text + f"; others {r['machine_load']['others_cores']:.2f} cores"
