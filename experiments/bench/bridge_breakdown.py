"""Where a bridge command's round trip goes beyond the raw pyzmq floor (a diagnostic, prints only).

``bridge.py`` measures ``command -> ack`` end to end against the raw pyzmq floor. This adds
the pieces one at a time, each against ``tianji bridge serve --robot fake:7`` in its own
process at each ``--rate``, all alternating in chunks (servers not in use are paused, as in
``bridge.py``) so that a shared machine's load weighs on every row alike:

* ``bare``: a bare DEALER speaking the protocol (msgpack, one command, its ack): the server's
  per-request Python and the 1 kHz tick it shares its thread with;
* ``bare + state stream``: the same with a SUB connected (not read: its zmq thread still
  receives every state);
* ``RemoteRobot``: ``RemoteRobot.command()``, what ``bridge.py`` measures.

The bare client's round trip is also split with the timestamps the protocol carries (client
and server share the machine's monotonic clock on loopback): client send -> the server starts
handling it (``t_recv`` of the ack), handling -> the ack is stamped (its ``t``), ack stamped ->
the client has it::

    python experiments/bench/bridge_breakdown.py --rates 1000 10 --n 3000
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import signal
import subprocess
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _bench_module():
    spec = importlib.util.spec_from_file_location("bridge_bench", HERE / "bridge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _signal(proc: subprocess.Popen[bytes], name: str) -> None:
    sig = getattr(signal, name, None)  # SIGSTOP / SIGCONT: POSIX only; elsewhere every server runs throughout
    if sig is not None:
        proc.send_signal(sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 10.0], help="server rates (Hz)")
    parser.add_argument("--n", type=int, default=3000, help="round trips per row")
    parser.add_argument("--chunks", type=int, default=10, help="chunks the rows alternate in")
    args = parser.parse_args(argv)
    bench = _bench_module()
    m = max(1, args.n // args.chunks)
    rows: dict[str, list[float]] = {"raw pyzmq echo (the floor)": []}
    legs: dict[float, dict[str, list[float]]] = {}
    load0 = os.getloadavg()
    with contextlib.ExitStack() as stack:
        echo = bench.Echo(None)
        stack.callback(echo.close)
        running = [stack.enter_context(bench.serve_process("fake:7", rate, None)) for rate in args.rates]
        for _, proc in running:
            _signal(proc, "SIGSTOP")  # paused but for its own rows (serve_process continues it to stop it)
        for _ in range(args.chunks):
            rows["raw pyzmq echo (the floor)"] += echo.round_trips(m)
            for rate, (endpoint, proc) in zip(args.rates, running, strict=True):
                _signal(proc, "SIGCONT")
                split = bench.bare_command_ack(endpoint, m)
                for k, v in split.items():
                    legs.setdefault(rate, {}).setdefault(k, []).extend(v)
                rows.setdefault(f"bare client, server at {rate:g} Hz", []).extend(split["total"])
                rows.setdefault(f"bare client + state stream, {rate:g} Hz", []).extend(
                    bench.bare_command_ack(endpoint, m, stream=True)["total"]
                )
                rows.setdefault(f"RemoteRobot.command(), {rate:g} Hz", []).extend(bench.command_ack(endpoint, m, None))
                _signal(proc, "SIGSTOP")
    load1 = os.getloadavg()
    floor = float(np.median(rows["raw pyzmq echo (the floor)"]))
    print(f"load average {load0[0]:.2f} -> {load1[0]:.2f}; {m * args.chunks} round trips per row, fake:7")
    print("| row | p50 us | over the floor us | / floor |")
    print("|---|---:|---:|---:|")
    for name, samples in rows.items():
        p50 = float(np.median(samples))
        print(f"| {name} | {p50 * 1e6:.0f} | {(p50 - floor) * 1e6:.0f} | {p50 / floor:.2f}x |")
    print()
    print("| bare client, server rate Hz | to server us | in server us | back us | total us |")
    print("|---:|---:|---:|---:|---:|")
    for rate, split in legs.items():
        r = {k: 1e6 * float(np.median(v)) for k, v in split.items()}
        print(f"| {rate:g} | {r['to server']:.0f} | {r['in server']:.0f} | {r['back']:.0f} | {r['total']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
