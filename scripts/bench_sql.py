"""Closed-loop latency of one SQL query over one connection with psycopg 3 (libpq):
every execution runs anew (the endpoint caches no answers). Prints runs, rows, p50, p99
and max in ms of the whole answer, and p50 / p99 of its two parts: `execute` (until libpq
holds every row: the server's work and the wire) and `fetchall` (psycopg turning the rows
into Python objects, on the client). The query's `{from}` and `{to}` become RFC 3339
instants.

usage: bench_sql.py DSN SECONDS FROM TO QUERY
"""
import sys
import time

import psycopg


def main():
    dsn, seconds, start, end, query = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    query = query.replace("{from}", start).replace("{to}", end)
    times, executes, fetches, rows = [], [], [], 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(query).fetchall()  # warm: the connection and the plan's first use
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            cursor = conn.execute(query)
            executed = time.perf_counter()
            rows = len(cursor.fetchall())
            done = time.perf_counter()
            times.append((done - t) * 1000)
            executes.append((executed - t) * 1000)
            fetches.append((done - executed) * 1000)
    for figures in (times, executes, fetches):
        figures.sort()
    pick = lambda figures, q: figures[min(len(figures) - 1, int(q * len(figures)))]
    print(
        f"psycopg: {len(times)} runs, {rows} rows, p50 {pick(times, 0.5):.2f} ms, "
        f"p99 {pick(times, 0.99):.2f} ms, max {times[-1]:.2f} ms "
        f"(execute p50 {pick(executes, 0.5):.2f} / p99 {pick(executes, 0.99):.2f} ms, "
        f"fetchall p50 {pick(fetches, 0.5):.2f} / p99 {pick(fetches, 0.99):.2f} ms)"
    )


if __name__ == "__main__":
    main()
