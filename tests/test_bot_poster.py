"""The poster against the Slack emulator: pacing, coalescing, 429 retries, error translation."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.poster import SlackPoster, make_web_client
from budo.config import Settings
from budo.errors import SlackError
from tests.fixtures.slack import BOT_TOKEN


def poster_for(slack, **options) -> SlackPoster:
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url)
    return SlackPoster(make_web_client(settings), **options)


async def test_posts_stay_within_the_channel_rate_without_a_single_429(slack):
    slack.limit_post_rate(per_second=5.0, burst=2)
    poster = poster_for(slack, rate_per_channel=5.0, burst=2)
    await asyncio.gather(*(poster.post("C1", f"message {i}") for i in range(10)))
    assert slack.limits.rejected_by_post_rate == []
    times = slack.post_times("C1")
    assert len(times) == 10
    # After the burst, sustained pace is the configured rate (small scheduling slack).
    sustained = (len(times) - 2) / (times[-1] - times[0])
    assert sustained <= 5.5
    # Posts to another channel are not held up by C1's queue.
    started = time.monotonic()
    await poster.post("C2", "elsewhere")
    assert time.monotonic() - started < 0.5


async def test_status_updates_coalesce_and_the_latest_state_wins(slack):
    poster = poster_for(slack, rate_per_channel=100.0, burst=10, update_interval=0.3)
    ts = await poster.post("C1", "status 0")
    for step in range(1, 40):
        poster.update_later("C1", ts, f"status {step}")
        await asyncio.sleep(0.005)
    await poster.update_now("C1", ts, "final")
    updates = slack.calls_to("chat.update")
    assert 1 <= len(updates) <= 3        # ~0.2 s of changes, one update per 0.3 s
    assert slack.message("C1", ts).text == "final"
    texts = [v["text"] for v in slack.updates("C1", ts)]
    assert texts[0] == "status 0" and texts[-1] == "final"


async def test_a_429_is_retried_after_retry_after(slack):
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    poster = poster_for(slack)
    started = time.monotonic()
    ts = await poster.post("C1", "eventually")
    assert time.monotonic() - started >= 1.0
    assert slack.message("C1", ts).text == "eventually"
    statuses = [c.response.get("error", "ok") for c in slack.calls_to("chat.postMessage")]
    assert statuses == ["ratelimited", "ok"]


async def test_slack_errors_become_one_line_slack_errors(slack):
    poster = poster_for(slack)
    slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackError, match=r"^Slack chat\.postMessage failed: channel_not_found$"):
        await poster.post("C1", "nope")
    dead = SlackPoster(make_web_client(Settings(slack_bot_token=BOT_TOKEN,
                                                slack_api_url="http://127.0.0.1:9/api/")))
    with pytest.raises(SlackError, match=r"chat\.postMessage failed"):
        await dead.post("C1", "nobody home")
