"""Catalog browsing at 100 vs 10,000 videos: search and category pages should cost the same.

Two catalogs are loaded into one DynamoDB Local (Amazon's engine; the AWS
emulator answers a GSI Query by walking every item, so it would measure itself,
not the design, and it loads 10k videos' index items slowly). Titles, categories
and the index items come from the same builders the app uses
(:func:`app.search.index_items`, :func:`app.catalog.video_item`); loading writes
them directly in parallel batches instead of one :meth:`SearchIndex.sync` per
video, only to save minutes. Then, interleaved, first pages of 20 through
:meth:`app.search.SearchIndex.browse` (one index Query + one BatchGetItem):
word-prefix searches, a category newest first and A-Z. Printed: median ms per
page at each size, the ratio (goal <= 1.5), and the items each page read
(``ScannedCount``), which is the cost DynamoDB bills.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from app.catalog import CATEGORIES, Video, video_item
from app.dynamo import client_config
from app.local.dynamodb_local import DEFAULT_CACHE_DIR, DynamoDBLocal
from app.local.ports import free_port
from app.search import CatalogQuery, SearchIndex, index_items, parse_query, searchable_catalog
from app.tables import create_tables

SIZES = (100, 10_000)
PAGE = 20
_WORDS = (
    "amber", "arc", "bay", "bear", "blue", "city", "cold", "dawn", "deep", "dune", "east",
    "echo", "fire", "fjord", "fox", "glass", "gold", "green", "hill", "ice", "iron", "jade",
    "lake", "lark", "last", "lime", "moon", "moss", "night", "north", "oak", "ocean", "owl",
    "peak", "pine", "rain", "red", "reef", "river", "road", "rock", "salt", "sand", "sea",
    "silk", "sky", "snow", "star", "stone", "storm", "sun", "tide", "tree", "vale", "wave",
    "west", "wild", "wind", "wolf", "wood",
)  # fmt: skip
QUERIES: tuple[tuple[str, str, str, str], ...] = (
    ("search 'oc' (newest)", "oc", "", ""),
    ("search 'storm' (newest)", "storm", "", ""),
    ("search 'riv sea' (A-Z)", "riv sea", "", "title"),
    ("category nature (newest)", "", "nature", ""),
    ("category music (A-Z)", "", "music", "title"),
    ("all videos (A-Z)", "", "", "title"),
)
_START = datetime(2026, 1, 1, tzinfo=UTC)


def bench_videos(count: int, seed: int = 12) -> list[Video]:
    """``count`` published videos with two-word titles and one or two categories."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    slugs = sorted(CATEGORIES)
    return [
        Video(
            video_id=f"bench-{number:05d}",
            title=f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
            description="",
            tier=rng.choice(("free", "premium")),
            object_key=f"videos/bench-{number:05d}/main.mp4",
            content_type="video/mp4",
            duration_seconds=60,
            poster_key=None,
            size_bytes=1,
            created_at=_START + timedelta(minutes=number),
            categories=tuple(sorted(set(rng.sample(slugs, rng.choice((1, 2)))))),
        )
        for number in range(count)
    ]


def load(client: Any, table: str, videos: list[Video], *, threads: int = 8) -> int:
    """Write the videos and their index items (and manifests); the number of items."""
    requests: list[dict[str, Any]] = []
    for video in videos:
        items = index_items(video)
        requests.append({"PutRequest": {"Item": video_item(video)}})
        requests += [{"PutRequest": {"Item": item}} for item in items]
        manifest = {
            "video_id": {"S": f"{video.video_id}#search"},
            "keys": {"L": [{"S": item["video_id"]["S"]} for item in items]},
        }
        requests.append({"PutRequest": {"Item": manifest}})

    def write(start: int) -> None:
        pending: dict[str, Any] = {table: requests[start : start + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(0, len(requests), 25)))
    return len(requests)


@dataclass
class Scanned:
    """Items read by the Queries of one page (DynamoDB's ScannedCount)."""

    count: int = 0

    def __call__(self, parsed: dict[str, Any], **_: Any) -> None:
        self.count += int(parsed.get("ScannedCount", 0))


@contextmanager
def _engine() -> Iterator[str]:
    with DynamoDBLocal(DEFAULT_CACHE_DIR, port=free_port()) as engine:
        yield engine.endpoint


def _page_ms(index: SearchIndex, query: CatalogQuery, scanned: Scanned) -> tuple[float, int]:
    scanned.count = 0
    started = time.perf_counter()
    videos, _ = index.browse(query, PAGE, None)
    elapsed = (time.perf_counter() - started) * 1000
    assert videos or query.terms, "a category or A-Z page came back empty"
    return elapsed, scanned.count


def run_catalog_bench(rounds: int = 30, sizes: tuple[int, int] = SIZES) -> list[str]:
    """Load both catalogs, time first pages; the lines to print."""
    lines = [f"catalog browsing, {sizes[0]} vs {sizes[1]} videos (DynamoDB Local, page {PAGE}):"]
    with _engine() as endpoint:
        client = boto3.Session(
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - DynamoDB Local takes any key
            region_name="us-east-1",
        ).client("dynamodb", endpoint_url=endpoint, config=_loading_config())
        scanned = Scanned()
        client.meta.events.register("after-call.dynamodb.Query", _after_query(scanned))
        indexes: dict[int, SearchIndex] = {}
        for size in sizes:
            table = f"bench-{size}-videos"
            create_tables(client, {"videos": table})
            started = time.perf_counter()
            items = load(client, table, bench_videos(size))
            seconds = time.perf_counter() - started
            lines.append(f"  loaded {size:>6} videos: {items:>7} items in {seconds:.0f} s")
            indexes[size] = searchable_catalog(client, table)[1]
        queries = [(label, parse_query(q, category, sort)) for label, q, category, sort in QUERIES]
        samples: dict[tuple[str, int], list[float]] = {}
        reads: dict[tuple[str, int], int] = {}
        for _label, query in queries:  # warm-up: the engine's first queries are slow (JIT)
            for size in sizes:
                _page_ms(indexes[size], query, scanned)
        for _ in range(rounds):
            for label, query in queries:
                for size in sizes:
                    elapsed, count = _page_ms(indexes[size], query, scanned)
                    samples.setdefault((label, size), []).append(elapsed)
                    reads[(label, size)] = count
        small, big = sizes
        lines.append(
            f"  {'':<28}{f'{small} ms':>10}{f'{big} ms':>11}{'ratio':>8}"
            f"{'read@' + str(small):>11}{'read@' + str(big):>12}"
        )
        ratios = []
        for label, _ in queries:
            a = statistics.median(samples[(label, small)])
            b = statistics.median(samples[(label, big)])
            ratios.append(b / a)
            lines.append(
                f"  {label:<28}{a:>10.1f}{b:>11.1f}{b / a:>8.2f}"
                f"{reads[(label, small)]:>11}{reads[(label, big)]:>12}"
            )
        lines.append(f"  worst ratio {max(ratios):.2f}  (goal <= 1.5; medians of {rounds} rounds)")
    return lines


def _loading_config() -> Config:
    """The app's retries, but patient reads: loading 200k items keeps the engine busy."""
    return client_config().merge(Config(read_timeout=60, max_pool_connections=16))


def _after_query(scanned: Scanned) -> Callable[..., None]:
    def hook(parsed: dict[str, Any], **_: Any) -> None:
        scanned(parsed)

    return hook


if __name__ == "__main__":
    for line in run_catalog_bench():
        print(line, flush=True)
