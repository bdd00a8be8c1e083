"""The console in a real browser: Debian's headless Chromium against a real ``sluice serve`` on loopback
over the test PostgreSQL server. Each page renders the data the test stored; the live tail shows an
event appended after the page opened; a redrive clicked in the console puts the dead letter back on its
queue; a read-only token sees no admin action and not the stream it may not read; the lag chart shows
the lag falling as a consumer catches up. Screenshots of the pages go to ``SLUICE_CONSOLE_SCREENSHOTS``
(docs/console when refreshing the docs) or to the test's tmp_path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

import sluice
from sluice import ConsumerGroupOptions, EventData, EventStore, StreamConfig, StreamType
from sluice.services.replay import Replays, ReplayTargetKind
from sluice.services.retention import RetentionLimits, set_policy
from sluice.store.values.replays import ReplayRequest
from tests.console.browser import (
    ADMIN_TOKEN,
    READER_TOKEN,
    attached_browser,
    chromium_process,
    screenshot_folder,
    signed_in_page,
    sluice_serve,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FAST = ConsumerGroupOptions(
    session_timeout=timedelta(seconds=2), heartbeat_interval=timedelta(milliseconds=200), batch_size=5
)
ORDERS = 24
WAIT_MS = 15_000


async def consume(store: EventStore, count: int) -> None:
    """Consume ``count`` events of ``orders`` as group ``email`` (committing them), then leave."""
    seen = 0
    async with store.consumer_groups().consume(
        "orders", group_id="email", consumer_id="mailer", options=FAST
    ) as events:
        async for _event in events:
            seen += 1
            if seen >= count:
                break


async def seed(store: EventStore) -> None:
    """Streams, a queue with a dead letter, a lagging group, a retention policy and a finished replay."""
    await store.create_stream(StreamConfig(name="orders", partitions=2))
    for number in range(ORDERS):
        await store.append(
            "orders",
            EventData("OrderPlaced", {"order": number, "lines": [{"sku": "A-1", "quantity": number % 4 + 1}]}),
            partition=number % 2,
            correlation_id=f"checkout-{number % 5}",
        )
    await store.create_stream(StreamConfig(name="payroll"))
    await store.append("payroll", EventData("SalaryPaid", {"employee": "e-7", "amount": 4200}))
    await store.create_stream(StreamConfig(name="jobs", type=StreamType.EPHEMERAL, max_attempts=1))
    await store.enqueue("jobs", EventData("RenderInvoice", {"invoice": 17}))
    message = await store.dequeue("jobs")
    assert message is not None
    await store.nack("jobs", message.receipt, reason="template invoice.html not found")
    await consume(store, 2)
    await set_policy(store, "orders", RetentionLimits(max_age=timedelta(days=7)))

    async def count_batch(_batch: object) -> None:
        return None

    await Replays(store).start(
        ReplayRequest(name="default.reindex-orders", stream="orders", from_offset=0, target=ReplayTargetKind.HANDLER),
        handler=count_batch,
    )


@pytest.fixture
async def store(postgres_dsn: str) -> AsyncIterator[EventStore]:
    opened = await sluice.connect(postgres_dsn, poll_interval=timedelta(milliseconds=100))
    try:
        await seed(opened)
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="session")
def chromium_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One Chromium for the tests of this pytest worker (it takes a few seconds to start)."""
    with chromium_process(tmp_path_factory.mktemp("chromium")) as port:
        yield port


@pytest.fixture
async def base(postgres_dsn: str, store: EventStore, tmp_path: Path) -> AsyncIterator[str]:
    async with sluice_serve(postgres_dsn, tmp_path) as address:
        yield address


@pytest.fixture
async def browser(chromium_port: int) -> AsyncIterator[Browser]:
    async with attached_browser(chromium_port) as attached:
        yield attached


async def shoot(page: Page, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def test_every_page_renders_real_data(browser: Browser, base: str, tmp_path: Path) -> None:
    folder = screenshot_folder(tmp_path)
    page = await signed_in_page(browser, base, ADMIN_TOKEN)
    rows = await page.locator("#streams tbody tr").evaluate_all("rows => rows.map(row => row.dataset.stream)")
    assert sorted(rows) == ["jobs", "orders", "payroll"]
    assert "7 days" in await page.locator('tr[data-stream="orders"]').inner_text()
    await shoot(page, folder, "streams")

    await page.click('a[href="/console/streams/orders"]')
    await page.locator("#partitions tbody tr").first.wait_for()  # count() does not wait for the navigation
    assert await page.locator("#partitions tbody tr").count() == 2
    assert await page.locator("tr.event").count() == ORDERS // 2
    await page.locator("tr.event").first.locator("summary").click()
    assert '"sku": "A-1"' in await page.locator("tr.event").first.locator("pre.payload").inner_text()
    await shoot(page, folder, "stream")
    await page.fill("input[name=correlation_id]", "checkout-3")
    await page.click("#search button")
    assert "5 event(s) with correlation id" in await page.locator("#search-result").inner_text()

    await page.goto(f"{base}/console/queues/jobs")
    assert "template invoice.html not found" in await page.locator("#dead-letters").inner_text()
    await shoot(page, folder, "queue")

    await page.goto(f"{base}/console/operations")
    assert "default.reindex-orders" in await page.locator("#replays").inner_text()
    assert "succeeded" in await page.locator("#replays").inner_text()
    assert await page.locator("#retention tbody tr").count() == 1
    await shoot(page, folder, "operations")

    await page.goto(f"{base}/console/health")
    assert "ready" in await page.locator("#readiness").inner_text()
    assert await page.locator("#health-checks tbody tr").count() == 3
    await shoot(page, folder, "health")


async def test_the_live_tail_shows_an_event_appended_after_the_page_opened(
    browser: Browser, base: str, store: EventStore, tmp_path: Path
) -> None:
    page = await signed_in_page(browser, base, ADMIN_TOKEN)
    await page.goto(f"{base}/console/streams/orders")
    await page.wait_for_selector('#tail[data-state="open"]', timeout=WAIT_MS)
    assert await page.locator("li.tail-event").count() == 0
    await store.append("orders", EventData("OrderShipped", {"order": 3, "carrier": "DHL"}), partition=1)
    arrived = page.locator("li.tail-event").first
    await arrived.wait_for(timeout=WAIT_MS)
    assert "OrderShipped" in await arrived.inner_text()
    assert '"carrier": "DHL"' in await arrived.inner_text()
    assert await arrived.get_attribute("data-offset") == str(ORDERS // 2)
    await page.locator("#tail").screenshot(path=str(screenshot_folder(tmp_path) / "live-tail.png"))


async def test_a_redrive_from_the_console_puts_the_dead_letter_back(
    browser: Browser, base: str, store: EventStore
) -> None:
    page = await signed_in_page(browser, base, ADMIN_TOKEN)
    await page.goto(f"{base}/console/queues/jobs")
    assert len(await store.dead_letters("jobs")) == 1
    assert (await store.queue_depth("jobs")).waiting == 0
    await page.click("#redrive")
    await page.wait_for_selector("#done", timeout=WAIT_MS)
    assert await store.dead_letters("jobs") == []
    assert (await store.queue_depth("jobs")).waiting == 1
    assert await page.locator("#no-dead-letters").count() == 1
    redriven = await store.dequeue("jobs")
    assert redriven is not None
    assert redriven.data == {"invoice": 17}


async def test_a_read_only_token_sees_no_admin_action_and_not_the_forbidden_stream(
    browser: Browser, base: str, tmp_path: Path
) -> None:
    page = await signed_in_page(browser, base, READER_TOKEN)
    assert await page.locator("#principal").inner_text() == "viewer"
    rows = await page.locator("#streams tbody tr").evaluate_all("rows => rows.map(row => row.dataset.stream)")
    assert sorted(rows) == ["jobs", "orders"]
    assert "payroll" not in await page.content()
    await shoot(page, screenshot_folder(tmp_path), "streams-read-only")
    await page.goto(f"{base}/console/queues/jobs")
    assert await page.locator("#dead-letters").count() == 1
    assert await page.locator("#redrive, #purge, .admin-action").count() == 0
    await page.goto(f"{base}/console/streams/orders/groups/email")
    assert await page.locator("#members").count() == 1 or await page.locator("#group-partitions").count() == 1
    assert await page.locator("#reset-form, .admin-action").count() == 0
    answer = await page.goto(f"{base}/console/streams/payroll")
    assert answer is not None
    assert answer.status == 403


async def lag_series(page: Page) -> list[int]:
    text = await page.locator("#lag-chart").get_attribute("data-lag-events") or ""
    return [int(value) for value in text.split(",") if value]


async def test_the_lag_chart_shows_the_lag_falling_as_a_consumer_catches_up(
    browser: Browser, base: str, store: EventStore, tmp_path: Path
) -> None:
    page = await signed_in_page(browser, base, ADMIN_TOKEN)
    await page.goto(f"{base}/console/streams/orders/groups/email")
    start = (await lag_series(page))[-1]
    assert start == ORDERS - 2
    await consume(store, start // 2)
    await _wait_for_lag(page, start - start // 2)
    await consume(store, start - start // 2)
    await _wait_for_lag(page, 0)
    series = await lag_series(page)
    assert series[0] == start
    assert series[-1] == 0
    assert start - start // 2 in series
    assert series == sorted(series, reverse=True)  # falling, never rising
    assert await page.locator("#lag-chart polyline").count() == 1
    await shoot(page, screenshot_folder(tmp_path), "group")


async def _wait_for_lag(page: Page, lag: int) -> None:
    """Until the refreshed chart says the lag now is ``lag``."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while (await page.locator("#lag-now").inner_text()).strip() != str(lag):
        assert asyncio.get_running_loop().time() < deadline, await page.locator("#lag-chart").inner_html()
        await asyncio.sleep(0.2)
