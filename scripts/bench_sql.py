"""Closed-loop latency of one SQL query over one connection with psycopg 3 (libpq):
every execution runs anew (the endpoint caches no answers). Prints runs, rows, p50, p99
and max in ms. The query's `{from}` and `{to}` become RFC 3339 instants.

usage: bench_sql.py DSN SECONDS FROM TO QUERY
"""
import sys
import time

import psycopg


def main():
    dsn, seconds, start, end, query = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    query = query.replace("{from}", start).replace("{to}", end)
    times, rows = [], 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(query).fetchall()  # warm: the connection and the plan's first use
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            rows = len(conn.execute(query).fetchall())
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"psycopg: {len(times)} runs, {rows} rows, p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {times[-1]:.2f} ms")


if __name__ == "__main__":
    main()
