#!/usr/bin/env python3
"""The batch job's work done by DuckDB over the same lake files, for comparison.

Reads one hour's event files, deduplicates by event_id (first by kafka_partition,
kafka_offset: the platform's rule), then computes the three per-event metrics per one-minute
window with approximate distinct counts and the `sessions` view, and writes each result to
Parquet, as `lambda batch` does. Prints the wall time of each run and the median, in seconds.

Sessions follow the platform's rule (docs/events-and-metrics.md, shared_logic::sessions): a
user's events in time order, a new session after a gap of more than 30 minutes or at
midnight UTC; the sessions that start in the hour, per minute of their start, country and
device of their first event: count, total duration, page views, bounces (one-event
sessions). Like `lambda batch`, they read the events of the same day from 30 minutes before
the hour (the previous hour's files) and the next hour's files when they exist (lambda reads
further hours while a session still reaches them; the benchmark's hours have no data after
them, so both do the same work). Ties in time are broken by event_id here and by the id's
hash in lambda: only the country/device of a session whose first two events share a
millisecond can differ.

usage: bench_batch_duckdb.py LAKE HOUR(2026-01-01T00) OUT_DIR [RUNS]
"""
import glob
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import duckdb


GAP_MS = 30 * 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def hour_files(lake: str, start: datetime) -> list[str]:
    """The Parquet files of the hour starting at `start` (none: an empty list)."""
    pattern = f"{lake}/events/date={start:%Y-%m-%d}/hour={start:%H}/*.parquet"
    return sorted(glob.glob(pattern))


def neighbour_rows(lake: str, start: datetime) -> str:
    """A query of the deduplicated rows of the same day's neighbouring hours that the hour's
    sessions read (the 30 minutes before it, the hour after it), or an empty string."""
    start_ms = int(start.timestamp() * 1000)
    parts = []
    for offset, low, high in ((-1, start_ms - GAP_MS, start_ms), (1, start_ms + HOUR_MS, start_ms + 2 * HOUR_MS)):
        other = start + timedelta(hours=offset)
        files = hour_files(lake, other)
        if other.date() != start.date() or not files:
            continue
        listed = ", ".join(f"'{f}'" for f in files)
        parts.append(
            f"""
            SELECT event_id, event_type, event_time, user_id, country, device
            FROM read_parquet([{listed}])
            WHERE epoch_ms(event_time) >= {low} AND epoch_ms(event_time) < {high}
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) = 1
            """
        )
    return " UNION ALL ".join(parts)


def job(lake: str, hour: str, out: str) -> float:
    date, hh = hour.split("T")
    files = f"{lake}/events/date={date}/hour={hh}/*.parquet"
    start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    start_ms = int(start.timestamp() * 1000)
    neighbours = neighbour_rows(lake, start)
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(
        f"""
        CREATE TEMP TABLE ev AS
        SELECT * FROM read_parquet('{files}')
        QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) = 1
        """
    )
    # The shipped rates on 2026-01-01 (USD per unit), as the platform converts revenue.
    rates = "CASE currency WHEN 'USD' THEN 1.0 WHEN 'EUR' THEN 1.085 WHEN 'GBP' THEN 1.265 WHEN 'JPY' THEN 0.0066 * 100 WHEN 'CNY' THEN 0.139 END"
    minute = "time_bucket(INTERVAL 1 minute, event_time)"
    con.execute(
        f"""
        COPY (
          SELECT {minute} AS window_start, url, country, device,
                 count(*) AS views, approx_count_distinct(user_id) AS distinct_users
          FROM ev WHERE event_type = 'page_view'
          GROUP BY ALL
        ) TO '{out}/page_views.parquet' (FORMAT parquet, COMPRESSION zstd)
        """
    )
    con.execute(
        f"""
        COPY (
          SELECT {minute} AS window_start, country, device, category,
                 count(*) FILTER (WHERE event_type = 'page_view') AS views,
                 count(*) FILTER (WHERE event_type = 'add_to_cart') AS carts,
                 count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
                 approx_count_distinct(user_id) FILTER (WHERE event_type = 'page_view') AS view_users,
                 approx_count_distinct(user_id) FILTER (WHERE event_type = 'add_to_cart') AS cart_users,
                 approx_count_distinct(user_id) FILTER (WHERE event_type = 'purchase') AS purchase_users
          FROM ev GROUP BY ALL
        ) TO '{out}/funnel.parquet' (FORMAT parquet, COMPRESSION zstd)
        """
    )
    con.execute(
        f"""
        COPY (
          SELECT {minute} AS window_start, category, country,
                 count(*) AS orders, sum(quantity) AS items,
                 sum(round(price_minor * quantity * {rates})) AS revenue_minor,
                 approx_count_distinct(user_id) AS distinct_buyers
          FROM ev WHERE event_type = 'purchase'
          GROUP BY ALL
        ) TO '{out}/revenue.parquet' (FORMAT parquet, COMPRESSION zstd)
        """
    )
    session_events = "SELECT event_id, event_type, event_time, user_id, country, device FROM ev"
    if neighbours:
        session_events += " UNION ALL " + neighbours
    con.execute(
        f"""
        COPY (
          WITH a AS (
            SELECT user_id, epoch_ms(event_time) AS t, event_id, event_type = 'page_view' AS pv, country, device
            FROM ({session_events})
          ), b AS (
            SELECT *, CASE WHEN t - lag(t) OVER w <= {GAP_MS} AND t // {DAY_MS} = lag(t) OVER w // {DAY_MS}
                           THEN 0 ELSE 1 END AS starts
            FROM a WINDOW w AS (PARTITION BY user_id ORDER BY t, event_id)
          ), c AS (
            SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY t, event_id ROWS UNBOUNDED PRECEDING) AS sid
            FROM b
          ), s AS (
            SELECT min(t) AS start, max(t) - min(t) AS duration_ms, count(*) FILTER (WHERE pv) AS page_views,
                   count(*) = 1 AS bounce,
                   first(country ORDER BY t, event_id) AS country, first(device ORDER BY t, event_id) AS device
            FROM c GROUP BY user_id, sid
          )
          SELECT epoch_ms(start // 60000 * 60000) AS window_start, country, device,
                 count(*) AS sessions, sum(duration_ms) AS total_duration_ms, sum(page_views) AS page_views,
                 count(*) FILTER (WHERE bounce) AS bounces
          FROM s WHERE start >= {start_ms} AND start < {start_ms + HOUR_MS}
          GROUP BY ALL
        ) TO '{out}/sessions.parquet' (FORMAT parquet, COMPRESSION zstd)
        """
    )
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def main() -> None:
    lake, hour, out = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    times = []
    for i in range(runs):
        t = job(lake, hour, out)
        times.append(t)
        print(f"duckdb run {i + 1}: {t:.2f} s", flush=True)
    print(f"duckdb median: {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
