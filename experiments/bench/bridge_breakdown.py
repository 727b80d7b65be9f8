"""Where a bridge command's round trip goes: to the server, inside it, and back (a diagnostic, prints only).

``bridge.py`` measures ``command -> ack`` end to end against the raw pyzmq floor. This splits one
round trip with the timestamps the protocol already carries (client and server share the
machine's monotonic clock on loopback): client send -> the server starts handling it
(``t_recv`` of the ack), handling -> the ack is stamped (its ``t``), ack stamped -> the client
has it. A bare DEALER client (no ``RemoteRobot`` I/O thread) talks to ``tianji bridge serve
--robot fake:7`` in its own process, at each ``--rate`` given::

    python experiments/bench/bridge_breakdown.py --rates 1000 100 --n 3000
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import zmq

from tianji.bridge import protocol

HERE = Path(__file__).resolve().parent


def _bench_module():
    spec = importlib.util.spec_from_file_location("bridge_bench", HERE / "bridge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split(endpoint: str, n: int, warmup: int = 100) -> dict[str, float]:
    """Median microseconds of each leg over ``n`` commands (after ``warmup``)."""
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(endpoint)
    try:
        seq = 1
        dealer.send(protocol.encode(protocol.message("hello", seq, time.monotonic(), role="controller")))
        if not dealer.poll(5000):
            raise RuntimeError("no welcome from the server")
        session = protocol.decode(dealer.recv())["session"]
        legs: dict[str, list[float]] = {"to server": [], "in server": [], "back": [], "total": []}
        for i in range(n + warmup):
            seq += 1
            fields = {"mode": "position", "joints": ["joint_1"], "targets": np.array([0.001 * (i % 100)])}
            t0 = time.monotonic()
            frame = protocol.encode(protocol.message("command", seq, t0, session=session, **fields))
            sent = time.monotonic()
            dealer.send(frame)
            if not dealer.poll(2000):
                raise RuntimeError("the server stopped answering")
            ack = protocol.decode(dealer.recv())
            t3 = time.monotonic()
            if i >= warmup:
                legs["to server"].append(ack["t_recv"] - sent)
                legs["in server"].append(ack["t"] - ack["t_recv"])
                legs["back"].append(t3 - ack["t"])
                legs["total"].append(t3 - t0)
        dealer.send(protocol.encode(protocol.message("bye", seq + 1, time.monotonic(), session=session)))
        dealer.poll(500)
        return {k: 1e6 * float(np.median(v)) for k, v in legs.items()}
    finally:
        ctx.destroy(linger=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 100.0], help="server rates (Hz)")
    parser.add_argument("--n", type=int, default=3000, help="commands per rate")
    args = parser.parse_args(argv)
    bench = _bench_module()
    floor = 1e6 * float(np.median(bench.raw_floor(args.n, None)))
    print(f"raw pyzmq echo round trip (the floor): p50 {floor:.0f} us")
    print("| server rate Hz | to server us | in server us | back us | total us | total / floor |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rate in args.rates:
        with bench.server("fake:7", rate, None) as endpoint:
            r = split(endpoint, args.n)
        print(
            f"| {rate:g} | {r['to server']:.0f} | {r['in server']:.0f} | {r['back']:.0f} | {r['total']:.0f} |"
            f" {r['total'] / floor:.2f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
