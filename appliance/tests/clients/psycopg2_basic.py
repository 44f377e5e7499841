"""psycopg2 (libpq, simple query protocol, client-side parameters) against kerndb.

Usage: psycopg2_basic.py PORT. Exits nonzero with a message on any mismatch."""
import sys

import psycopg2

port = int(sys.argv[1])
conn = psycopg2.connect(host="127.0.0.1", port=port, user="kerndb", password="kerndb", dbname="kerndb")
cur = conn.cursor()
cur.execute("CREATE TABLE py (id INTEGER NOT NULL, name TEXT, flag BOOLEAN, big BIGINT)")
conn.commit()
cur.execute("INSERT INTO py VALUES (%s, %s, %s, %s)", (1, "it's", True, 2**40))
cur.execute("INSERT INTO py VALUES (%s, %s, %s, %s)", (2, None, False, -7))
conn.commit()
cur.execute("INSERT INTO py VALUES (%s, %s, %s, %s)", (3, "rolled back", True, 0))
conn.rollback()
cur.execute("SELECT id, name, flag, big FROM py WHERE id = %s", (1,))
got = cur.fetchall()
assert got == [(1, "it's", True, 2**40)], got
cur.execute("SELECT id FROM py")
got = sorted(r[0] for r in cur.fetchall())
assert got == [1, 2], got
try:
    cur.execute("SELECT nope FROM py")
    raise SystemExit("expected an error")
except psycopg2.errors.UndefinedColumn:
    pass
# The failed transaction refuses work until rolled back, with 25P02.
try:
    cur.execute("SELECT 1")
    raise SystemExit("expected 25P02")
except psycopg2.errors.InFailedSqlTransaction:
    pass
conn.rollback()
cur.execute("SELECT 1 + 1")
assert cur.fetchone() == (2,)
conn.close()
print("psycopg2 ok")
