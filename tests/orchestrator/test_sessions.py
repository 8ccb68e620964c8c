"""Session markers: attached is visible from another cai process; dead processes don't count."""

from __future__ import annotations

from containai.orchestrator import _sessions


def test_markers_count_live_sessions_and_drop_stale_ones(isolated_home) -> None:
    marker = _sessions.open_marker("app-main", "s1")
    assert _sessions.open_sessions("app-main") == 1
    stale = marker.with_name("999999999-dead")
    stale.touch()
    assert _sessions.open_sessions("app-main") == 1
    assert not stale.exists()
    _sessions.close_marker(marker)
    assert _sessions.open_sessions("app-main") == 0


async def test_another_orchestrator_reports_attached_while_a_session_is_open(
    orchestrator, make_workspace
) -> None:
    ws = make_workspace("app")
    async with orchestrator() as a:
        status = await a.up(ws)
        async with a.session(status.name), orchestrator() as b:
            await b.settled(within=5)
            assert b.status(status.name).state == "attached"
        async with orchestrator() as c:
            await c.settled(within=5)
            assert c.status(status.name).state == "sshd-ready"
