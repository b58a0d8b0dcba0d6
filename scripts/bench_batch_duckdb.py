#!/usr/bin/env python3
"""The batch job's work done by DuckDB over the same lake files, for comparison.

Reads one hour's event files, deduplicates by event_id (first by kafka_partition,
kafka_offset: the platform's rule), then computes the three metrics per one-minute window
with approximate distinct counts, and writes each result to Parquet, as `lambda batch`
does. Prints the wall time of each run and the median, in seconds.

usage: bench_batch_duckdb.py LAKE HOUR(2026-01-01T00) OUT_DIR [RUNS]
"""
import statistics
import sys
import time

import duckdb


def job(lake: str, hour: str, out: str) -> float:
    date, hh = hour.split("T")
    files = f"{lake}/events/date={date}/hour={hh}/*.parquet"
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
