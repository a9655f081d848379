#!/usr/bin/env python3
"""Print fields of the JSON a command ended its stdout with, for the compare scripts.

  some-command --json | python json_fields.py samples_per_s test_accuracy

Reads stdin, takes the whole text as JSON or else its last line that parses, and
prints the named fields, one per line. An array is searched for its first object
that has the first field (a bench's list of figures). Exits 1 with a message on
stderr when there is no JSON or a field is missing.
"""

import json
import sys


def last_json(text):
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def main(fields):
    if not fields:
        print("usage: json_fields.py FIELD...", file=sys.stderr)
        return 2
    value = last_json(sys.stdin.read())
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, dict) and fields[0] in item), None)
    if not isinstance(value, dict):
        print("json_fields.py: no JSON object on the input", file=sys.stderr)
        return 1
    missing = [field for field in fields if field not in value]
    if missing:
        print(
            f"json_fields.py: the JSON has no {', '.join(missing)} "
            f"(it has {', '.join(sorted(value)) or 'nothing'})",
            file=sys.stderr,
        )
        return 1
    for field in fields:
        print(value[field])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
