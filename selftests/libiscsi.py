#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""libiscsi's iscsi-test-cu, judged per test.

  libiscsi.py parse OUTPUT [TESTS]      one "Suite.Test outcome [reason]" line per test; a test
                                        of TESTS (Suite.Test lines) the output lacks failed
  libiscsi.py judge EXPECT BACKEND RTARGET LIO|-
                                        TAP-free report; exit 1 on a regression
  libiscsi.py show OUTPUT RESULTS       the log around the first failure of each test RESULTS
                                        says failed

CUnit counts a skipped test as passed, so the outcome comes from the test's own log:
  pass     ran, no skip
  fail     CUnit failure
  notimpl  skipped because the target lacks the command or feature ("is not implemented",
           "does not support", "not supported")
  skip     skipped for another reason (the LUN is not removable, no second path, ...)
"""
import re
import sys

NOTIMPL = re.compile(r"not implemented|does not support|not supported|does not claim", re.I)
RANK = {"pass": 3, "skip": 2, "notimpl": 1, "fail": 0}


def parse(text, logs=None):
    """{ "Suite.Test": (outcome, reason) } from iscsi-test-cu's verbose output; each test's
    log lines go to `logs` if given."""
    results, suite, test, body = {}, None, None, []

    def close():
        if test is None:
            return
        log = "\n".join(body)
        failed = re.search(r"(?<!\[)FAILED(?!\])", log) is not None
        skips = re.findall(r"\[SKIPPED\]\s*(.*)", log)
        if failed:
            outcome, reason = "fail", ""
            m = re.search(r"^\s+1\. (.*)$", log, re.M)
            if m:
                reason = m.group(1).strip()
        elif skips:
            reason = skips[0].strip()
            outcome = "notimpl" if NOTIMPL.search(reason) else "skip"
        elif re.search(r"\bpassed\b", log):
            outcome, reason = "pass", ""
        else:
            outcome, reason = "fail", "no result (crashed or timed out)"
        results[f"{suite}.{test}"] = (outcome, reason)
        if logs is not None:
            logs[f"{suite}.{test}"] = body

    for line in text.splitlines():
        if line.startswith("### iscsi-test-cu"):
            # A new invocation: its start-up output belongs to no test.
            close()
            test, body = None, []
            continue
        m = re.match(r"^Suite: (\S+)", line)
        if m:
            close()
            suite, test, body = m.group(1), None, []
            continue
        m = re.match(r"^\s+Test: (\S+) \.\.\.(.*)$", line)
        if m:
            close()
            test, body = m.group(1), [m.group(2)]
            continue
        if test is not None:
            body.append(line)
    close()
    return results


def load(path):
    out = {}
    for line in open(path, errors="replace"):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) >= 2:
            out[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return out


def counts(res):
    c = {k: 0 for k in RANK}
    for outcome, _ in res.values():
        c[outcome] += 1
    return " ".join(f"{k} {c[k]}" for k in ("pass", "fail", "notimpl", "skip"))


def judge(expect_path, backend, rt_path, lio_path):
    rt = load(rt_path)
    lio = load(lio_path) if lio_path != "-" else None
    expect = {}
    for line in open(expect_path):
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#") and parts[0] == backend:
            expect[parts[1]] = parts[2]
    if lio is None:
        print(f"{backend}: rtarget {counts(rt)}; {len(rt)} tests (C LIO not run on this backend)")
        lio = {}
    else:
        print(f"{backend}: rtarget {counts(rt)}; C LIO {counts(lio)}; {len(rt)} tests")
    diff = [] if not lio else sorted(t for t in set(rt) | set(lio) if rt.get(t, ("none",))[0] != lio.get(t, ("none",))[0])
    if diff:
        print(f"{backend}: where rtarget and C LIO differ:")
        for t in diff:
            r, l = rt.get(t, ("none", "")), lio.get(t, ("none", ""))
            print(f"  {t:<44} rtarget {r[0]:<8} LIO {l[0]:<8} {(r[1] or l[1])[:70]}")
    behind = [t for t in lio if lio[t][0] == "pass" and rt.get(t, ("none",))[0] != "pass"]
    if behind:
        print(f"{backend}: C LIO passes and rtarget does not: {' '.join(sorted(behind))}")
    for t in sorted(t for t in rt if rt[t][0] == "fail"):
        print(f"{backend}: rtarget fails {t}: {rt[t][1][:150]}")
    # Only a test that did worse than expected fails the run; the file lists what must pass.
    # Every test of the run's list has an outcome (parse fills in the ones that did not run),
    # so a test without one was left out of the run on purpose (LIBISCSI_SUITES).
    bad = []
    for t, want in sorted(expect.items()):
        got = rt.get(t)
        if got is not None and RANK[got[0]] < RANK[want]:
            bad.append(f"{t}: expected {want}, got {got[0]} {got[1]}")
    better = [t for t, want in expect.items() if t in rt and RANK[rt[t][0]] > RANK[want]]
    if better:
        print(f"{backend}: better than expected (update the expectations): {' '.join(sorted(better))}")
    for t in sorted(rt):
        print(f"libiscsi-expect {backend} {t} {rt[t][0]}")
    for b in bad:
        print(f"REGRESSION {backend} {b}")
    return 1 if bad else 0


def main():
    if len(sys.argv) in (3, 4) and sys.argv[1] == "parse":
        res = parse(open(sys.argv[2], errors="replace").read())
        if len(sys.argv) == 4:
            for t in open(sys.argv[3]).read().split():
                res.setdefault(t, ("fail", "not run (iscsi-test-cu stopped before it)"))
        for t, (o, r) in sorted(res.items()):
            print(f"{t} {o} {r}".rstrip())
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "show":
        logs = {}
        parse(open(sys.argv[2], errors="replace").read(), logs)
        for t, (outcome, _) in sorted(load(sys.argv[3]).items()):
            if outcome == "fail" and logs.get(t):
                body = logs[t]
                first = next((i for i, line in enumerate(body) if "[FAILED]" in line), len(body))
                print(f"--- {t}")
                print("\n".join(body[max(0, first - 8):first + 2] + ["..."] + body[-4:]))
        return 0
    if len(sys.argv) == 6 and sys.argv[1] == "judge":
        return judge(*sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
