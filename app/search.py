"""Browsing the published catalog: title search, categories and sort, without a table scan.

Every published video gets a few small index items in the videos table (their
``video_id`` holds a ``#``, which no real video id has, so they never show up as
videos), one per *browse key* and order: ``all``, ``c#<category>``, and
``p#<prefix>`` for each prefix (1 to :data:`MAX_PREFIX` letters) of each word
of its folded title. The ``browse-index`` GSI (``browse``, ``browse_sort``)
answers any listing with one Query that reads one page, newest first
(``n|<key>``, by ``created_at#id``) or A-Z (``t|<key>``, by folded title):
the cost of a page does not grow with the catalog (docs/catalog.md).

Folding is case- and accent-insensitive (NFKD, combining marks dropped,
casefold). The index only proposes: each page is read back from the video
items in one BatchGetItem and checked again (published, still matching), so a
stale index item can hide a video for a moment but never show a wrong one.
:meth:`SearchIndex.sync` rewrites one video's items (the catalog calls it after
each write); it is idempotent, so running it again repairs a failed run.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from app.catalog import (
    CATEGORIES,
    MAX_CACHE_SECONDS,
    Video,
    VideoCatalog,
    VideoPage,
    is_video_id,
    video_from_item,
)
from app.dynamo import (
    Item,
    check_limit,
    decode_cursor,
    encode_cursor,
    error_code,
    query_page,
    s,
    unavailable_on_errors,
)
from app.errors import BadRequestError, DependencyUnavailableError
from app.tables import VIDEOS_BROWSE_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger("vidgate.search")

Sort = Literal["newest", "title"]
SORTS: frozenset[str] = frozenset({"newest", "title"})
MAX_PREFIX = 10
"""Prefixes are indexed up to this many letters; a longer search word is checked on the page."""
MAX_QUERY_LENGTH = 100
MAX_TERMS = 6
MAX_TITLE_WORDS = 16
"""Words of a title that are indexed (the first ones): bounds the writes per video."""
_SORT_TITLE_LENGTH = 200
_BATCH_WRITE = 25  # BatchWriteItem's limit
_BATCH_CALLS = 5
_MARKER = "#search"  # the manifest item: which browse keys a video has now
_INDEX_KEY = ("video_id", "browse", "browse_sort")
FILTERED_READS = 100
"""Index items one page of a filtered query (several words, or words and a category) reads."""
_WORD = re.compile(r"\w+")


# --- text ----------------------------------------------------------------------------


def fold(text: str) -> str:
    """``"Café ÉTÉ"`` -> ``"cafe ete"``: no accents, case-folded (for matching and A-Z)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(text)):
        seen.setdefault(word.replace("_", ""), None)
    return [word for word in seen if word]


@dataclass(frozen=True)
class CatalogQuery:
    """What a viewer asked for: search words (prefixes), a category, an order."""

    terms: tuple[str, ...] = ()
    category: str | None = None
    sort: Sort = "newest"

    @property
    def is_plain(self) -> bool:
        """No search and no category, newest first: the catalog's own listing answers it."""
        return not self.terms and self.category is None and self.sort == "newest"

    def matches(self, video: Video) -> bool:
        """True when ``video`` (as stored now) answers this query."""
        if self.category is not None and self.category not in video.categories:
            return False
        title_words = words(video.title)
        return all(any(word.startswith(term) for word in title_words) for term in self.terms)

    def browse_key(self) -> str:
        """The index partition that holds every answer (the longest term: the fewest items)."""
        if self.terms:
            longest = max(self.terms, key=len)
            return "p#" + longest[:MAX_PREFIX]
        if self.category is not None:
            return "c#" + self.category
        return "all"


def parse_query(q: str | None, category: str | None, sort: str | None) -> CatalogQuery:
    """The query of ``?q=&category=&sort=`` (absent or empty parameters mean "any").

    :raises BadRequestError: a query that is too long, an unknown category or sort.
    """
    q = q or ""
    if len(q) > MAX_QUERY_LENGTH:
        raise BadRequestError(f"q must be at most {MAX_QUERY_LENGTH} characters")
    terms = words(q)
    if len(terms) > MAX_TERMS:
        raise BadRequestError(f"q may have at most {MAX_TERMS} words")
    if category and category not in CATEGORIES:
        raise BadRequestError(f"category must be one of {', '.join(sorted(CATEGORIES))}")
    if sort and sort not in SORTS:
        raise BadRequestError("sort must be newest or title")
    return CatalogQuery(
        terms=tuple(terms),
        category=category or None,
        sort="title" if sort == "title" else "newest",
    )


# --- index items -----------------------------------------------------------------------


def browse_keys(video: Video) -> list[str]:
    """The browse keys of a video as it is now (none unless viewers may see it)."""
    if not video.viewable:
        return []
    keys: dict[str, None] = {"all": None}
    for category in video.categories:
        keys["c#" + category] = None
    for word in words(video.title)[:MAX_TITLE_WORDS]:
        for length in range(1, min(len(word), MAX_PREFIX) + 1):
            keys["p#" + word[:length]] = None
    return list(keys)


def title_sort(video: Video) -> str:
    return f"{fold(video.title)[:_SORT_TITLE_LENGTH]}#{video.video_id}"


def index_items(video: Video) -> list[Item]:
    """Every index item of ``video``: two per browse key (newest first, A-Z)."""
    marks = {
        "ref": s(video.video_id),
        "words": s(" " + " ".join(words(video.title)) + " "),
        "cats": s(" " + " ".join(video.categories) + " "),
    }
    items: list[Item] = []
    for key in browse_keys(video):
        for order, sort_value in (("n", video.sort_key), ("t", title_sort(video))):
            browse = f"{order}|{key}"
            items.append(
                {
                    "video_id": s(f"{video.video_id}#{browse}"),
                    "browse": s(browse),
                    "browse_sort": s(sort_value),
                    **marks,
                }
            )
    return items


class SearchIndex:
    """Keeps the browse index of the videos table and answers catalog queries from it."""

    def __init__(
        self,
        client: DynamoDBClient,
        videos_table: str,
        catalog: VideoCatalog,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = videos_table
        self._catalog = catalog
        self._sleep = sleep

    # --- reading ---------------------------------------------------------------------

    def browse(self, query: CatalogQuery, limit: int, cursor: str | None) -> VideoPage:
        """One page of published videos answering ``query``, in its order.

        A plain query (no words, no category, newest first) is the catalog's own listing.

        :raises BadRequestError: a bad limit, or a cursor not issued for this query.
        :raises DependencyUnavailableError: DynamoDB cannot be read.
        """
        if query.is_plain:
            return self._catalog.list(limit, cursor)
        limit = check_limit(limit)
        browse = ("t|" if query.sort == "title" else "n|") + query.browse_key()
        names = {"#b": "browse"}
        values: Item = {":b": s(browse)}
        filters: list[str] = []
        # The partition holds the longest term's prefix: any other term, and the rest of a
        # term longer than the indexed prefix, is checked on the index item.
        partition_term = max(query.terms, key=len) if query.terms else ""
        for number, term in enumerate(query.terms):
            if term == partition_term and len(term) <= MAX_PREFIX:
                continue
            names["#w"] = "words"
            values[f":w{number}"] = s(" " + term)
            filters.append(f"contains(#w, :w{number})")
        if query.terms and query.category is not None:
            names["#c"] = "cats"
            values[":c"] = s(f" {query.category} ")
            filters.append("contains(#c, :c)")
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": VIDEOS_BROWSE_INDEX,
            "KeyConditionExpression": "#b = :b",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": query.sort == "title",
        }
        start = decode_cursor(
            cursor,
            key_types={"video_id": "S", "browse": "S", "browse_sort": "S"},
            fixed={"browse": browse},
        )
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
            items, next_cursor = self._filtered_page(request, limit, start)
        else:
            items, next_cursor = query_page(
                self._client,
                request,
                limit=limit,
                start_key=start,
                key_attributes=_INDEX_KEY,
            )
        refs = [item["ref"]["S"] for item in items if "ref" in item]
        videos = self._read_videos(refs)
        return [video for video in videos if video.viewable and query.matches(video)], next_cursor

    def _filtered_page(
        self, request: dict[str, Any], limit: int, start: Item | None
    ) -> tuple[list[Item], str | None]:
        """One Query that examines at most :data:`FILTERED_READS` index items (DynamoDB
        applies ``Limit`` before the filter): a page may hold fewer than ``limit``
        matches and still have a next page, but it never costs more."""
        kwargs = {**request, "Limit": FILTERED_READS}
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        try:
            with unavailable_on_errors():
                response = self._client.query(**kwargs)
        except ClientError as exc:
            if start is not None and error_code(exc) == "ValidationException":
                raise BadRequestError("cursor does not belong to this listing") from exc
            raise
        items = response.get("Items", [])
        if len(items) > limit:
            items = items[:limit]
            return items, encode_cursor({name: items[-1][name] for name in _INDEX_KEY})
        last = response.get("LastEvaluatedKey")
        return items, encode_cursor({name: last[name] for name in _INDEX_KEY} if last else None)

    def _read_videos(self, refs: list[str]) -> list[Video]:
        """The video items of ``refs`` in one BatchGetItem (strongly consistent), in order."""
        wanted = [ref for ref in dict.fromkeys(refs) if is_video_id(ref)]
        if not wanted:
            return []
        found: dict[str, Video] = {}
        pending: Mapping[str, Any] = {
            self._table: {
                "Keys": [{"video_id": s(ref)} for ref in wanted],
                "ConsistentRead": True,
            }
        }
        for call in range(_BATCH_CALLS):
            if call:
                self._sleep(0.02 * 2 ** (call - 1))
            with unavailable_on_errors():
                response = self._client.batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(self._table, []):
                video = video_from_item(item)
                found[video.video_id] = video
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return [found[ref] for ref in wanted if ref in found]
        raise DependencyUnavailableError("DynamoDB left catalog keys unprocessed")

    # --- writing ---------------------------------------------------------------------

    def sync(self, video_id: str) -> int:
        """Make ``video_id``'s index items match the video as stored now; the item count.

        Idempotent: new items are written first, then the stale ones deleted, then
        the manifest (the list of keys written) replaced.

        :raises DependencyUnavailableError: DynamoDB cannot be read or written.
        """
        if not is_video_id(video_id):
            return 0
        with unavailable_on_errors():
            response = self._client.batch_get_item(
                RequestItems={
                    self._table: {
                        "Keys": [
                            {"video_id": s(video_id)},
                            {"video_id": s(video_id + _MARKER)},
                        ],
                        "ConsistentRead": True,
                    }
                }
            )
        if response.get("UnprocessedKeys"):
            raise DependencyUnavailableError("DynamoDB left keys unprocessed")
        video: Video | None = None
        manifest: list[str] = []
        for item in response.get("Responses", {}).get(self._table, []):
            if item["video_id"]["S"] == video_id:
                video = video_from_item(item)
            else:
                manifest = [value["S"] for value in item.get("keys", {}).get("L", [])]
        items = index_items(video) if video is not None else []
        written = {item["video_id"]["S"] for item in items}
        stale = [key for key in manifest if key not in written]
        self._write([{"PutRequest": {"Item": item}} for item in items])
        self._write([{"DeleteRequest": {"Key": {"video_id": s(key)}}} for key in stale])
        with unavailable_on_errors():
            if items:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        "video_id": s(video_id + _MARKER),
                        "keys": {"L": [s(key) for key in sorted(written)]},
                    },
                )
            elif manifest:
                self._client.delete_item(
                    TableName=self._table, Key={"video_id": s(video_id + _MARKER)}
                )
        log.info(
            json.dumps(
                {"event": "search_index_synced", "video": video_id, "items": len(items)},
            )
        )
        return len(items)

    def rebuild(self, video_ids: Iterable[str]) -> int:
        """:meth:`sync` each video; the total item count (for repairs and loading)."""
        return sum(self.sync(video_id) for video_id in video_ids)

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), _BATCH_WRITE):
            pending: Mapping[str, Any] = {self._table: requests[start : start + _BATCH_WRITE]}
            for call in range(_BATCH_CALLS):
                if call:
                    self._sleep(0.02 * 2 ** (call - 1))
                with unavailable_on_errors():
                    response = self._client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise DependencyUnavailableError("DynamoDB left index writes unprocessed")


def searchable_catalog(
    client: DynamoDBClient, videos_table: str, *, cache_seconds: float = MAX_CACHE_SECONDS
) -> tuple[VideoCatalog, SearchIndex]:
    """A catalog whose every write keeps the search index in step, and that index."""
    catalog = VideoCatalog(client, videos_table, cache_seconds=cache_seconds)
    index = SearchIndex(client, videos_table, catalog)
    catalog.on_change(index.sync)
    return catalog, index
