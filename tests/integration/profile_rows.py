"""The script tests/integration/profile_pyversions.sh profiles under each
CPython (and docs/profiler.md quotes): lists of objects built in make_rows.
The SITE- comments name the lines and functions the test expects."""


class Row:
    def __init__(self, key, name):
        self.key = key
        self.name = name
        self.cells = [key] * 2  # SITE-init Row.__init__


def make_rows(n):
    rows = []
    for i in range(n):
        rows.append(Row(i, "row-%d" % i))  # SITE-top make_rows
    return rows


def main():  # SITE-caller main
    for _ in range(8):
        make_rows(40000)


main()
