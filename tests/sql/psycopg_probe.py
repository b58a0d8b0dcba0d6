"""The SQL endpoint through psycopg 3 (libpq), a client we did not write: the extended
query protocol with bound parameters (timestamptz, text), server-side prepared statements
(prepare=True, after psycopg's threshold too; with and without parameters), binary results, bytea, numeric, and errors
with their SQLSTATE on a session that stays usable. Prints one JSON object for
tests/tests/sql_clients.rs to compare with the REST API and the direct computation.

usage: psycopg_probe.py DSN FROM_MS TO_MS
"""
import datetime as dt
import json
import sys

import psycopg


def instant(ms):
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def main():
    dsn, from_ms, to_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    start, end = instant(from_ms), instant(to_ms)
    out = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        by_device = (
            "SELECT window_start, device, views, distinct_users FROM page_views "
            "WHERE window_start >= %s AND window_start < %s AND country = %s ORDER BY 1, 2"
        )
        runs = []
        for i in range(7):  # past psycopg's prepare threshold (5), and prepared at once
            with conn.cursor(binary=(i % 2 == 1)) as cur:
                cur.execute(by_device, (start, end, "US"), prepare=(i >= 3))
                runs.append([[r[0].astimezone(dt.timezone.utc).isoformat(), r[1], r[2], r[3]] for r in cur.fetchall()])
        assert all(r == runs[0] for r in runs), "every execution answers the same"
        # The same query without parameters: the simple protocol (text), then prepared
        # portals without parameters (extended protocol), in text and in binary.
        inlined = (
            "SELECT window_start, device, views, distinct_users FROM page_views "
            f"WHERE window_start >= '{start.isoformat()}' AND window_start < '{end.isoformat()}' "
            "AND country = 'US' ORDER BY 1, 2"
        )
        for i in range(7):
            with conn.cursor(binary=(i % 2 == 1)) as cur:
                cur.execute(inlined, prepare=(i >= 3))
                got = [[r[0].astimezone(dt.timezone.utc).isoformat(), r[1], r[2], r[3]] for r in cur.fetchall()]
                assert got == runs[0], f"run {i} without parameters answers as with them"
        out["page_views_by_device_us"] = runs[0]

        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT category, sum(revenue), sum(revenue_minor), approx_distinct_merge(buyers_sketch) "
                "FROM revenue WHERE window_start >= %s AND window_start < %s GROUP BY category ORDER BY category",
                (start, end),
            )
            rows = cur.fetchall()
            out["revenue_by_category"] = [[c, str(amount), int(minor), int(buyers)] for c, amount, minor, buyers in rows]
            cur.execute(
                "SELECT users_sketch FROM page_views WHERE window_start >= %s AND window_start < %s LIMIT 1",
                (start, end),
            )
            sketch = cur.fetchone()[0]
            out["sketch_is_bytes"] = isinstance(sketch, (bytes, memoryview)) and len(bytes(sketch)) > 0
            cur.execute("SELECT %s::bigint + 1, %s::text || 'b'", (41, "a"))
            out["parameters"] = list(cur.fetchone())

        errors = []
        for sql, params in [
            ("SELECT * FROM nope WHERE window_start >= %s", (start,)),
            ("SELECT nope FROM page_views WHERE window_start >= %s", (start,)),
            ("INSERT INTO page_views (url) VALUES (%s)", ("x",)),
        ]:
            try:
                conn.execute(sql, params)
                errors.append("no error")
            except psycopg.Error as e:
                errors.append(e.sqlstate)
        out["errors"] = errors
        out["after_errors"] = conn.execute("SELECT 1").fetchone()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
