"""Turns the Argo CD health test cases into one Lua chunk.

Usage: yaml2lua.py HEALTH_TEST_YAML > cases.lua

The chunk returns a list of {name=, obj=, status=, message=}, where obj is
the sample object as the Lua table Argo CD would hand to the health script
(JSON objects and arrays become tables, null becomes nil).
"""

import datetime
import os
import sys

import yaml


def lua_string(value):
    out = ['"']
    for byte in value.encode("utf-8"):
        ch = chr(byte)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            # Decimal escapes work in every Lua version.
            out.append("\\%03d" % byte)
    out.append('"')
    return "".join(out)


def lua(value, indent=0):
    pad = "  " * (indent + 1)
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return lua_string(value.isoformat())
    if isinstance(value, str):
        return lua_string(value)
    if isinstance(value, list):
        items = [pad + lua(v, indent + 1) + "," for v in value]
        return "{\n" + "\n".join(items) + "\n" + "  " * indent + "}" if items else "{}"
    if isinstance(value, dict):
        items = [
            pad + "[" + lua_string(str(k)) + "] = " + lua(v, indent + 1) + ","
            for k, v in value.items()
            if v is not None
        ]
        return "{\n" + "\n".join(items) + "\n" + "  " * indent + "}" if items else "{}"
    raise TypeError("cannot express %r in Lua" % (value,))


def main(path):
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    cases = []
    for test in spec["tests"]:
        input_path = test["inputPath"]
        with open(os.path.join(base, input_path), encoding="utf-8") as f:
            obj = yaml.safe_load(f)
        expected = test["healthStatus"]
        cases.append(
            {
                "name": input_path,
                "obj": obj,
                "status": expected["status"],
                "message": expected.get("message", ""),
            }
        )
    if not cases:
        sys.exit("%s: no tests" % path)
    sys.stdout.write("return " + lua(cases) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
