"""Who may see what, and exactly-once delivery: signed requests into the real Bolt app."""

from __future__ import annotations

from pathlib import Path

from tests.bot_harness import CHANNEL, REQUESTER, VERDICT, FakeCluster, running_bot

OTHER = "C_OTHER"
ANSWER = [{"answer": VERDICT}]


async def replies_with(h, text: str):
    return await h.slack.wait_for(
        lambda: [p for p in h.slack.response_posts if text in p.body.get("text", "")],
        message=f"no reply containing {text!r}")


async def test_exports_and_listings_stay_in_their_channel(slack, scripted_model, tmp_path: Path):
    slack.add_channel(OTHER, "elsewhere")
    model = await scripted_model(ANSWER)
    async with running_bot(slack, model.url, FakeCluster().tools(), tmp_path) as h:
        await h.sim.slash_command("investigate checkout is down", user_id=REQUESTER)
        root = await h.root_message()
        run_id = root.text.split("· run ")[1].split()[0]
        await h.top_level("🧭 Verdict")
        await h.run_finished(run_id)
        terminal = await h.store.start_run(source="terminal", question="local secret run")

        # Another channel: neither the listing nor an export by id shows the run.
        await h.sim.slash_command("runs", user_id="U_SPY", channel_id=OTHER)
        listed = await replies_with(h, "No investigations in this channel")
        assert run_id not in listed[0].body["text"]
        await h.sim.slash_command(f"export {run_id}", user_id="U_SPY", channel_id=OTHER)
        refused = await replies_with(h, f"There is no run {run_id} in this channel")
        assert refused[0].body["response_type"] == "ephemeral"
        # A terminal run is never uploaded, not even into the channel that asks by id.
        await h.sim.slash_command(f"export {terminal.id}", user_id=REQUESTER)
        await replies_with(h, f"There is no run {terminal.id} in this channel")
        await h.sim.slash_command("export r-doesnotexist", user_id=REQUESTER)
        await replies_with(h, "There is no run r-doesnotexist in this channel")
        assert slack.files == []

        # Its own channel: listed and exported into the run's thread.
        await h.sim.slash_command("runs", user_id=REQUESTER)
        await replies_with(h, run_id)
        await h.sim.slash_command(f"export {run_id}", user_id=REQUESTER)
        files = await slack.wait_for(lambda: len(slack.files) == 2 and slack.files)
        assert all(f.channel == CHANNEL and f.thread_ts == root.ts for f in files)
        assert not any(terminal.id in (f.content or b"").decode() for f in files)
