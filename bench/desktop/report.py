#!/usr/bin/env python3
"""Tables for bench/desktop/run.sh: one line per measured session, then the medians per variant and the ratio
Gatehouse ÷ freerdp-proxy3 of the relay's ms of CPU per MiB relayed.

results.tsv columns: round, variant, window seconds, relay ticks, client ticks, host ticks, client-leg bytes,
host-leg bytes, clock ticks per second, screenshot colours, Gatehouse ticks and freerdp-proxy3 ticks in the same window (whichever
variant ran: the idle cost of the relay not in use). WORK (optional) holds threads-ROUND-VARIANT.0/.1 (per-thread ticks).
"""
import statistics
import sys

MIB = 1024 * 1024
NAMES = {"direct": "direct (client -> host)", "gatehouse": "Gatehouse", "proxy": "freerdp-proxy3"}


def threads(work, rows, label):
    """Where each relay's CPU went, by thread name, summed over its runs (from threads-ROUND-VARIANT.0/.1)."""
    import glob
    import os
    for v in ("gatehouse", "proxy"):
        per_name, total = {}, 0.0
        for r in (r for r in rows if r["variant"] == v):
            base = os.path.join(work, f"threads-{r['round']}-{v}")
            if not (os.path.exists(base + ".0") and os.path.exists(base + ".1")):
                continue
            before = {}
            with open(base + ".0", encoding="utf-8") as f:
                for line in f:
                    t, name, ticks = line.split()
                    before[t] = int(ticks)
            with open(base + ".1", encoding="utf-8") as f:
                for line in f:
                    t, name, ticks = line.split()
                    d = int(ticks) - before.get(t, 0)
                    per_name[name] = per_name.get(name, 0) + d
                    total += d
        if total <= 0:
            continue
        top = sorted(per_name.items(), key=lambda kv: -kv[1])[:8]
        print(f"{NAMES[v]}'s CPU by thread name, {label}: "
              + ", ".join(f"{name.replace('_', ' ')} {100.0 * ticks / total:.0f} %" for name, ticks in top if ticks > 0) + ".")


def main(results_path, work=None):
    rows = []
    with open(results_path, encoding="utf-8") as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 10:
                continue
            seconds, tck = float(p[2]), float(p[8])
            relay_ms, client_ms, host_ms = (int(p[i]) * 1000.0 / tck for i in (3, 4, 5))
            client_mib, host_mib = int(p[6]) / MIB, int(p[7]) / MIB
            rows.append({
                "round": int(p[0]), "variant": p[1], "s": seconds,
                "relay_ms": relay_ms, "client_ms": client_ms, "host_ms": host_ms,
                "client_mib": client_mib, "host_mib": host_mib, "colours": p[9],
                "relay_ms_per_mib": relay_ms / client_mib if client_mib > 0 else float("nan"),
                "client_ms_per_mib": client_ms / client_mib if client_mib > 0 else float("nan"),
                "mib_s": client_mib / seconds,
                "relay_cpu_pct": relay_ms / seconds / 10.0,
            })
            rows[-1]["ticks"] = {"gatehouse": int(p[10]) * 1000.0 / tck, "proxy": int(p[11]) * 1000.0 / tck} if len(p) >= 12 else {}

    # Each relay's idle cost: its CPU during the windows of the other variants (no session of its own then).
    idle = {}
    for v in ("gatehouse", "proxy"):
        others = [r for r in rows if r["variant"] != v and v in r["ticks"]]
        if others:
            idle[v] = sum(r["ticks"][v] for r in others) / sum(r["s"] for r in others)
    for r in rows:
        net = r["relay_ms"] - idle.get(r["variant"], 0.0) * r["s"]
        r["relay_net_ms_per_mib"] = net / r["client_mib"] if r["client_mib"] > 0 else float("nan")

    print()
    print("| round | variant | window s | client leg MiB | MiB/s to the client | host leg MiB | relay CPU ms | "
          "**relay ms/MiB** | relay ms/MiB less idle | relay CPU % | client ms/MiB | host (shadow) CPU % | screenshot colours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        relay = r["variant"] != "direct"
        print(f"| {r['round']} | {NAMES[r['variant']]} | {r['s']:.1f} | {r['client_mib']:.1f} | {r['mib_s']:.2f} | "
              f"{r['host_mib']:.1f} | {fmt(r['relay_ms'], relay, '.0f')} | {fmt(r['relay_ms_per_mib'], relay, '.1f', bold=True)} | "
              f"{fmt(r['relay_net_ms_per_mib'], relay, '.1f')} | {fmt(r['relay_cpu_pct'], relay, '.1f')} | {r['client_ms_per_mib']:.1f} | {r['host_ms'] / r['s'] / 10.0:.1f} | {r['colours']} |")

    first = [r for r in rows if r["round"] == 0]
    rows = [r for r in rows if r["round"] != 0]
    g0 = [r for r in first if r["variant"] == "gatehouse"]
    p0 = [r for r in first if r["variant"] == "proxy"]
    if g0 and p0:
        print()
        print(f"Round 0 is the first session through each relay after it started, left out of the medians: "
              f"Gatehouse {g0[0]['relay_ms_per_mib']:.1f} ms/MiB, freerdp-proxy3 {p0[0]['relay_ms_per_mib']:.1f} ms/MiB "
              f"(ratio {g0[0]['relay_ms_per_mib'] / p0[0]['relay_ms_per_mib']:.2f}).")

    print()
    print("Medians over the rounds from 1 on:")
    print()
    print("| variant | runs | MiB/s to the client | **relay ms/MiB** | relay ms/MiB less idle | relay CPU % | client ms/MiB | host CPU % |")
    print("|---|---|---|---|---|---|---|---|")
    med = {}
    for v in ("direct", "gatehouse", "proxy"):
        vs = [r for r in rows if r["variant"] == v]
        if not vs:
            continue
        m = {k: statistics.median(r[k] for r in vs) for k in ("mib_s", "relay_ms_per_mib", "relay_net_ms_per_mib", "relay_cpu_pct", "client_ms_per_mib")}
        m["host_pct"] = statistics.median(r["host_ms"] / r["s"] / 10.0 for r in vs)
        med[v] = m
        relay = v != "direct"
        print(f"| {NAMES[v]} | {len(vs)} | {m['mib_s']:.2f} | {fmt(m['relay_ms_per_mib'], relay, '.1f', bold=True)} | "
              f"{fmt(m['relay_net_ms_per_mib'], relay, '.1f')} | {fmt(m['relay_cpu_pct'], relay, '.1f')} | {m['client_ms_per_mib']:.1f} | {m['host_pct']:.1f} |")

    print()
    per_round = []
    for rnd in sorted({r["round"] for r in rows}):
        g = [r for r in rows if r["round"] == rnd and r["variant"] == "gatehouse"]
        p = [r for r in rows if r["round"] == rnd and r["variant"] == "proxy"]
        if g and p and p[0]["relay_ms_per_mib"] > 0:
            per_round.append(g[0]["relay_ms_per_mib"] / p[0]["relay_ms_per_mib"])
    if "gatehouse" in med and "proxy" in med:
        ratio = med["gatehouse"]["relay_ms_per_mib"] / med["proxy"]["relay_ms_per_mib"]
        print(f"Gatehouse ÷ freerdp-proxy3, ms of CPU per MiB relayed: per round {' / '.join(f'{x:.2f}' for x in per_round)}; "
              f"**median of the per-round ratios {statistics.median(per_round):.2f}**, ratio of the medians {ratio:.2f} "
              f"(issue 16 item 4 asks for <= 0.5).")
        rate = med["gatehouse"]["mib_s"] / med["proxy"]["mib_s"] if med["proxy"]["mib_s"] > 0 else float("nan")
        print(f"Delivered to the client, Gatehouse ÷ freerdp-proxy3: {rate:.2f} (median MiB/s); "
              f"direct: {med.get('direct', {}).get('mib_s', float('nan')):.2f} MiB/s.")

    if work:
        threads(work, first, "first session (round 0)")
        threads(work, rows, "rounds from 1 on")
    if idle:
        print(f"Idle (each relay's CPU during the other variants' windows, no session of its own): "
              f"Gatehouse {idle.get('gatehouse', float('nan')):.1f} ms of CPU per s, freerdp-proxy3 {idle.get('proxy', float('nan')):.1f} ms per s "
              f"('less idle' subtracts that rate over the window).")


def fmt(value, present, spec, bold=False):
    if not present:
        return "—"
    text = format(value, spec)
    return f"**{text}**" if bold else text


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
