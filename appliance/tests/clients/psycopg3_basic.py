"""psycopg 3 (extended query protocol, server-side parameters, binary formats) against kerndb.

Usage: psycopg3_basic.py PORT. Exits nonzero with a message on any mismatch."""
import sys

from decimal import Decimal

import psycopg

port = int(sys.argv[1])
with psycopg.connect(host="127.0.0.1", port=port, user="kerndb", password="kerndb", dbname="kerndb") as conn:
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
print("psycopg 3 ok")
