"""psycopg 3 (extended query protocol, server-side parameters, binary formats) against kerndb.

Usage: psycopg3_basic.py PORT. Exits nonzero with a message on any mismatch."""
import sys

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} user=kerndb password=kerndb dbname=kerndb"
with psycopg.connect(dsn) as conn:
    cur = conn.cursor()
    cur.execute("CREATE TABLE p3 (id INTEGER NOT NULL, name TEXT, flag BOOLEAN, big BIGINT)")
    conn.commit()
    cur.executemany("INSERT INTO p3 VALUES (%s, %s, %s, %s)", [(i, f"n{i}", i % 2 == 0, i * 10**10) for i in range(1, 6)])
    conn.commit()
    cur.execute("SELECT name, big FROM p3 WHERE id = %s", (3,))
    assert cur.fetchall() == [("n3", 3 * 10**10)], "text results"
    # Binary results.
    cur = conn.cursor(binary=True)
    cur.execute("SELECT id, flag, name FROM p3 WHERE id = %s", (2,))
    assert cur.fetchall() == [(2, True, "n2")], "binary results"
    # Prepared statements, reused.
    for i in range(1, 6):
        cur.execute("SELECT id FROM p3 WHERE id = %s", (i,), prepare=True)
        assert cur.fetchone() == (i,)
    # Errors inside a transaction, then rollback.
    try:
        cur.execute("SELECT nope FROM p3 WHERE id = %s", (1,))
        raise SystemExit("expected an error")
    except psycopg.errors.UndefinedColumn:
        conn.rollback()
    cur.execute("SELECT id FROM p3 WHERE flag = %s", (True,))
    assert sorted(r[0] for r in cur.fetchall()) == [2, 4]
    # NUMERIC in binary, both ways (%b sends the parameter in binary).
    conn.commit()
    cur.execute("CREATE TABLE pn (id INTEGER NOT NULL, amount NUMERIC)")
    conn.commit()
    cur.execute("INSERT INTO pn VALUES (%b, %b), (%b, %b)", (1, Decimal("12345.678"), 2, Decimal("-0.5")))
    conn.commit()
    cur.execute("SELECT amount FROM pn ORDER BY id")
    got = [r[0] for r in cur.fetchall()]
    assert got == [Decimal("12345.678"), Decimal("-0.5")], f"binary numeric: {got}"
    # NUMERIC is exact: cents add up, NUMERIC(p,s) rounds on store, scales come back as sent.
    cur.execute("CREATE TABLE money (id INTEGER NOT NULL, amt NUMERIC(12,2))")
    conn.commit()
    cur.executemany("INSERT INTO money VALUES (%s, %s)", [(i, Decimal("0.10")) for i in range(1, 1001)])
    cur.execute("INSERT INTO money VALUES (%b, %b)", (1001, Decimal("1.005")))
    conn.commit()
    cur.execute("SELECT sum(amt), avg(amt), max(amt) FROM money")
    got = cur.fetchone()
    assert got == (Decimal("101.01"), Decimal("0.10090909090909090909"), Decimal("1.01")), f"exact numeric: {got}"
    assert str(got[0]) == "101.01", got
    cur.execute("SELECT amt FROM money WHERE id = 1")
    col = cur.description[0]
    assert (col.precision, col.scale) == (12, 2), f"NUMERIC(12,2) in RowDescription: {col.precision}, {col.scale}"
    cur.execute("SELECT %s::numeric / 3, 0.1 + 0.2", (Decimal("1"),))
    got = cur.fetchone()
    assert got == (Decimal("0.33333333333333333333"), Decimal("0.3")), f"numeric division: {got}"
    try:
        cur.execute("INSERT INTO money VALUES (%s, %s)", (1002, Decimal("12345678901.5")))
        raise SystemExit("expected numeric field overflow")
    except psycopg.errors.NumericValueOutOfRange:
        conn.rollback()
    # INTERVAL as datetime.timedelta, in text and in binary, both ways.
    cur.execute("CREATE TABLE pi (id INTEGER NOT NULL, took INTERVAL)")
    conn.commit()
    cur.execute("INSERT INTO pi VALUES (%s, %s), (%b, %b)", (1, timedelta(days=1, seconds=3), 2, timedelta(hours=-5, microseconds=7)))
    conn.commit()
    for c in (conn.cursor(), conn.cursor(binary=True)):
        c.execute("SELECT took, took * 2 FROM pi ORDER BY id")
        got = c.fetchall()
        assert got == [(timedelta(days=1, seconds=3), timedelta(days=2, seconds=6)), (timedelta(hours=-5, microseconds=7), timedelta(hours=-10, microseconds=14))], f"intervals: {got}"
    cur.execute("SELECT %b::timestamp - %b::timestamp", (datetime(2024, 3, 1, 12), datetime(2024, 2, 1)))
    assert cur.fetchone()[0] == timedelta(days=29, hours=12)
    # TIMESTAMP WITH TIME ZONE: an aware datetime keeps its instant, in text and in binary.
    cur.execute("CREATE TABLE ptz (id INTEGER NOT NULL, at TIMESTAMPTZ)")
    conn.commit()
    plus2 = timezone(timedelta(hours=2))
    cur.execute("INSERT INTO ptz VALUES (%s, %s), (%b, %b)", (1, datetime(2024, 5, 1, 12, tzinfo=plus2), 2, datetime(2024, 5, 1, 12, tzinfo=timezone.utc)))
    conn.commit()
    for c in (conn.cursor(), conn.cursor(binary=True)):
        c.execute("SELECT at FROM ptz ORDER BY id")
        got = [r[0] for r in c.fetchall()]
        assert got == [datetime(2024, 5, 1, 10, tzinfo=timezone.utc), datetime(2024, 5, 1, 12, tzinfo=timezone.utc)], f"timestamptz: {got}"
    cur.execute("SELECT now()")
    assert cur.fetchone()[0].utcoffset() == timedelta(0), "now() is a timestamptz in UTC"
    # A sequence: numbers from two connections never repeat, currval is per connection.
    cur.execute("CREATE SEQUENCE pseq START 10")
    conn.commit()
    other = psycopg.connect(dsn, autocommit=True)
    got = []
    for c in (cur, other.cursor(), cur):
        c.execute("SELECT nextval('pseq')")
        got.append(c.fetchone()[0])
    assert got == [10, 11, 12], f"nextval: {got}"
    oc = other.cursor()
    oc.execute("SELECT currval('pseq')")
    assert oc.fetchone()[0] == 11
    other.close()
    conn.commit()
print("psycopg 3 ok")
