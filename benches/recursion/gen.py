#!/usr/bin/env python3
"""Generates the loopback DNS hierarchy of benches/recursion.sh (and the name files it queries).

    gen.py net OUTDIR [--zones N] [--seed S]     # zones, keys, signed zones, NSD and netsim configs
    gen.py names ZONE COUNT SEED                 # COUNT distinct random names under ZONE, dnsperf format

The hierarchy lives on 127.55.0.0/16, port 53 (never 127.53.0.0/16, the test suite's fakenet):

    127.55.0.1-2     root "."               NSD "root"    signed, NSEC
    127.55.1.1-2     com                    NSD "tld"     signed, NSEC
    127.55.1.3       net                    NSD "tld"     signed, NSEC3 (0 iterations, no salt)
    127.55.1.4       org                    NSD "tld"     unsigned (no DS in the root)
    127.55.2.1-48    second-level zones     NSD "a"       each zone on 2 of these addresses
    127.55.3.1-48    second-level zones     NSD "b"
    127.55.4.1-16    8 hosting providers    NSD "a"/"b"   provN.net, whose customers' NS are ns1/ns2.provN.net
    127.55.30.1-16   slow servers           netsim        UDP/TCP delay proxies (50..200 ms, fixed per
                                                          address) in front of NSD "slow" (127.55.31.1:5300)
    127.55.40.1-8    silent servers         netsim        read every query, never answer (no ICMP):
                                                          ns1 of the "half-silent" zones, whose ns2 answers
    127.55.41.1-2    silent.com             netsim        a zone whose servers never answer

Second-level zones (population, --zones): under com (45 %), net (30 %), org (25 %); under com and
net 40 % NSEC-signed, 25 % NSEC3-signed, 35 % unsigned (insecure delegation); under org unsigned.
Servers: 55 % in-bailiwick ns1/ns2 with glue, 30 % at a provider (NS names out of bailiwick, no
glue in com/org), 10 % slow, 5 % half-silent. Each zone has 5..25 hosts (A, half of them also
AAAA), about 12 % of which are CNAMEs into a zone of another NSD (chains of 1..3 CNAMEs across
zones; never two hops on one NSD, so that no NSD answers a chain it should not follow).

Special zones: nsec-flood.com (NSEC, 100 hosts), nsec3-flood.net (NSEC3, no opt-out, 100 hosts),
stream.org (unsigned, `*` wildcard), silent.com (never answers).

Answer data is only 198.18.0.0/15 and 2001:db8::/32. Signatures are valid from 1 hour ago for 30
days; OUTDIR/stamp records the parameters and the signing time so a later run can reuse the
hierarchy.
"""
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

SYL = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "xe", "zo", "ba", "de", "fi", "go",
       "hu", "ji", "ke", "li", "mo", "ne", "po", "qu", "ri", "sa", "te", "un", "vi", "wa", "yo"]
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

POOL = {"a": [f"127.55.2.{i}" for i in range(1, 49)], "b": [f"127.55.3.{i}" for i in range(1, 49)]}
PROVIDERS = 8
SLOW = [(f"127.55.30.{i}", 50 + (150 * (i - 1)) // 15) for i in range(1, 17)]
SLOW_BACKEND = ("127.55.31.1", 5300)
SILENT_HALF = [f"127.55.40.{i}" for i in range(1, 9)]
SILENT_FULL = ["127.55.41.1", "127.55.41.2"]
TLDS = {"com": ("nsec", ["127.55.1.1", "127.55.1.2"]), "net": ("nsec3", ["127.55.1.3"]),
        "org": ("unsigned", ["127.55.1.4"])}
ROOT = ["127.55.0.1", "127.55.0.2"]
SOA_TAIL = "1 1800 900 604800 300"


def word(rng, n=None):
    n = n or rng.randint(2, 4)
    return "".join(rng.choice(SYL) for _ in range(n))


class Addr:
    """Answer addresses: 198.18.0.0/15 and 2001:db8::/32, one per record, in order."""

    def __init__(self):
        self.i = 1

    def next(self):
        i = self.i
        self.i += 1
        return f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}", f"2001:db8::{i:x}"


def plan(nzones, seed):
    rng = random.Random(seed)
    addr = Addr()
    zones = {}  # name -> dict
    used = set()

    def new_zone(name, tld, mode, nsd, servers, kind):
        z = {"name": name, "tld": tld, "mode": mode, "nsd": nsd, "servers": servers, "kind": kind,
             "hosts": {}, "extra": []}
        zones[name] = z
        used.add(name)
        return z

    # Hosting providers: provN.net, NSEC-signed, in-bailiwick NS.
    providers = []
    for k in range(PROVIDERS):
        nsd = "ab"[k % 2]
        a1, a2 = f"127.55.4.{2 * k + 1}", f"127.55.4.{2 * k + 2}"
        z = new_zone(f"prov{k}.net", "net", "nsec", nsd, [("ns1", a1), ("ns2", a2)], "own")
        providers.append(z)

    modes = ["nsec"] * 40 + ["nsec3"] * 25 + ["unsigned"] * 35
    kinds = ["own"] * 55 + ["provider"] * 30 + ["slow"] * 10 + ["halfsilent"] * 5
    pop = []
    for i in range(nzones):
        r = rng.random()
        tld = "com" if r < 0.45 else ("net" if r < 0.75 else "org")
        while True:
            name = f"{word(rng)}{rng.randint(0, 99) if rng.random() < 0.3 else ''}.{tld}"
            if name not in used and not name.startswith("prov"):
                break
        mode = "unsigned" if tld == "org" else rng.choice(modes)
        kind = rng.choice(kinds)
        if kind == "provider":
            p = rng.choice(providers)
            z = new_zone(name, tld, mode, p["nsd"], [("ns1." + p["name"], None), ("ns2." + p["name"], None)], kind)
        elif kind == "slow":
            s1, s2 = rng.sample(SLOW, 2)
            z = new_zone(name, tld, mode, "slow", [("ns1", s1[0]), ("ns2", s2[0])], kind)
        else:
            nsd = rng.choice("ab")
            a1, a2 = rng.sample(POOL[nsd], 2)
            if kind == "halfsilent":
                a1 = rng.choice(SILENT_HALF)
            z = new_zone(name, tld, mode, nsd, [("ns1", a1), ("ns2", a2)], kind)
        pop.append(z)

    # Hosts with A (+ AAAA on half of them).
    for z in pop + providers:
        n = rng.randint(5, 25)
        labels = ["www", "mail"] + [word(rng) for _ in range(n * 2)]
        for lab in labels:
            if len(z["hosts"]) >= n:
                break
            if lab in z["hosts"] or lab in ("ns1", "ns2"):
                continue
            v4, v6 = addr.next()
            z["hosts"][lab] = {"A": v4, "AAAA": v6 if rng.random() < 0.5 else None}
    # CNAMEs: ~12 % of hosts point into a zone of another NSD; chains of up to 3.
    chains = {1: [], 2: []}  # length -> [(fqdn, nsd)]
    targets = [(f"{h}.{z['name']}.", z["nsd"]) for z in pop for h in z["hosts"]]
    ncname = 0
    for z in pop:
        n = max(1, round(len(z["hosts"]) * 0.12))
        for _ in range(n):
            r = rng.random()
            pool = chains[2] if r < 0.15 and chains[2] else (chains[1] if r < 0.45 and chains[1] else targets)
            length = 3 if pool is chains[2] else (2 if pool is chains[1] else 1)
            for _ in range(20):
                t, tn = rng.choice(pool)
                if tn != z["nsd"]:
                    break
            else:
                continue
            lab = "c" + word(rng)
            if lab in z["hosts"]:
                continue
            z["hosts"][lab] = {"CNAME": t}
            if length < 3:
                chains[length].append((f"{lab}.{z['name']}.", z["nsd"]))
            ncname += 1

    # Special zones.
    fl = new_zone("nsec-flood.com", "com", "nsec", "a", [("ns1", POOL["a"][0]), ("ns2", POOL["a"][1])], "own")
    fl3 = new_zone("nsec3-flood.net", "net", "nsec3", "b", [("ns1", POOL["b"][0]), ("ns2", POOL["b"][1])], "own")
    for z in (fl, fl3):
        while len(z["hosts"]) < 100:
            lab = "".join(rng.choice(ALNUM) for _ in range(rng.randint(4, 12)))
            z["hosts"].setdefault(lab, {"A": addr.next()[0], "AAAA": None})
    st = new_zone("stream.org", "org", "unsigned", "a", [("ns1", POOL["a"][2]), ("ns2", POOL["a"][3])], "own")
    st["extra"].append("* A 198.19.255.1")
    new_zone("silent.com", "com", "unsigned", None, [("ns1", SILENT_FULL[0]), ("ns2", SILENT_FULL[1])], "silent")

    # The cold set: every host of the population once (A), plus 5 % names that do not exist.
    cold = [f"{h}.{z['name']} A" for z in pop for h in z["hosts"]]
    nx = [f"nx{word(rng)}{i}.{rng.choice(pop)['name']} A" for i in range(len(cold) // 20)]
    cold += nx
    rng.shuffle(cold)
    return zones, pop, cold, ncname


def zone_text(z):
    name = z["name"]
    out = [f"$ORIGIN {name}.", "$TTL 3600", f"@ IN SOA ns1.{name}. hostmaster.{name}. {SOA_TAIL}"]
    for ns, a in z["servers"]:
        out.append(f"@ IN NS {ns}." if "." in ns else f"@ IN NS {ns}")
    for ns, a in z["servers"]:
        if "." not in ns:
            out.append(f"{ns} IN A {a}")
    for h, rr in z["hosts"].items():
        if "CNAME" in rr:
            out.append(f"{h} IN CNAME {rr['CNAME']}")
        else:
            out.append(f"{h} IN A {rr['A']}")
            if rr.get("AAAA"):
                out.append(f"{h} IN AAAA {rr['AAAA']}")
    out += z["extra"]
    return "\n".join(out) + "\n"


def tld_text(tld, zones):
    mode, addrs = TLDS[tld]
    out = [f"$ORIGIN {tld}.", "$TTL 3600", f"@ IN SOA a.nic.{tld}. hostmaster.nic.{tld}. {SOA_TAIL}"]
    letters = "ab"
    for i, a in enumerate(addrs):
        out.append(f"@ IN NS {letters[i]}.nic.{tld}.")
        out.append(f"{letters[i]}.nic IN A {a}")
    if tld == "net":
        for i, a in enumerate(ROOT):
            out.append(f"{letters[i]}.root-servers IN A {a}")
    for z in zones.values():
        if z["tld"] != tld:
            continue
        label = z["name"][: -len(tld) - 1]
        for ns, a in z["servers"]:
            if "." in ns:
                out.append(f"{label} IN NS {ns}.")
            else:
                out.append(f"{label} IN NS {ns}.{z['name']}.")
                out.append(f"{ns}.{label} IN A {a}")
    return "\n".join(out) + "\n"


def root_text():
    out = ["$ORIGIN .", "$TTL 86400",
           f"@ IN SOA a.root-servers.net. hostmaster.root-servers.net. {SOA_TAIL}"]
    for i, a in enumerate(ROOT):
        out.append(f"@ IN NS {'ab'[i]}.root-servers.net.")
        out.append(f"{'ab'[i]}.root-servers.net. IN A {a}")
    for tld, (mode, addrs) in TLDS.items():
        for i, a in enumerate(addrs):
            out.append(f"{tld}. 3600 IN NS {'ab'[i]}.nic.{tld}.")
            out.append(f"{'ab'[i]}.nic.{tld}. 3600 IN A {a}")
    return "\n".join(out) + "\n"


def sign(work, name, mode, text, times):
    """Writes work/zones/NAME.signed; returns the DS lines for the parent ('' if unsigned)."""
    fname = "root" if name == "." else name
    src = f"{work}/src/{fname}.zone"
    with open(src, "w") as f:
        f.write(text)
    out = f"{work}/zones/{fname}.signed"
    if mode == "unsigned":
        subprocess.run(["cp", src, out], check=True)
        return ""
    origin = "." if name == "." else name + "."
    kdir = f"{work}/keys/{fname}"
    os.makedirs(kdir, exist_ok=True)
    ksk = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin], cwd=kdir, check=True,
                         capture_output=True, text=True).stdout.strip()
    zsk = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", origin], cwd=kdir, check=True,
                         capture_output=True, text=True).stdout.strip()
    args = ["ldns-signzone", "-i", times[0], "-e", times[1], "-o", origin, "-f", out]
    if mode == "nsec3":
        args += ["-n", "-t", "0"]
    subprocess.run(args + [src, ksk, zsk], cwd=kdir, check=True)
    with open(f"{kdir}/{ksk}.ds") as f:
        ds = f.read()
    if name == ".":
        with open(f"{work}/root.anchor", "w") as f:
            for line in ds.splitlines():
                p = line.split()
                if "DS" in p:
                    f.write(f". 3600 IN DS {' '.join(p[p.index('DS') + 1:])}\n")
    return ds


def nsd_conf(work, inst, addrs, zone_names):
    d = f"{work}/nsd/{inst}"
    os.makedirs(d, exist_ok=True)
    lines = ["server:"]
    for a in addrs:
        lines.append(f"  ip-address: {a}")
    lines += ["  port: 53" if inst != "slow" else f"  port: {SLOW_BACKEND[1]}",
              "  do-ip4: yes", "  do-ip6: no", "  reuseport: no", "  server-count: 1", "  tcp-count: 64",
              '  username: ""', '  chroot: ""', f'  zonesdir: "{work}/zones"', f'  pidfile: "{d}/nsd.pid"',
              f'  logfile: "{d}/nsd.log"', '  database: ""', f'  zonelistfile: "{d}/zone.list"',
              f'  xfrdfile: "{d}/xfrd.state"', f'  xfrdir: "{d}"', "  zonefiles-write: 0",
              "  zonefiles-check: no", "  verbosity: 0", "  hide-version: yes", "  hide-identity: yes",
              "  minimal-responses: no", "  refuse-any: yes",
              # no response rate limiting: the floods come from one address and must all be answered
              "  rrl-ratelimit: 0", "  rrl-whitelist-ratelimit: 0",
              "remote-control:", "  control-enable: yes", f'  control-interface: "{d}/nsd.ctl"']
    for zn in zone_names:
        fname = "root" if zn == "." else zn
        lines += ["zone:", f'  name: "{zn}"', f'  zonefile: "{fname}.signed"']
    with open(f"{d}/nsd.conf", "w") as f:
        f.write("\n".join(lines) + "\n")


def cmd_net(out, nzones, seed):
    t0 = time.time()
    zones, pop, cold, ncname = plan(nzones, seed)
    for sub in ("src", "zones", "keys", "nsd"):
        os.makedirs(f"{out}/{sub}", exist_ok=True)
    now = time.time()
    fmt = lambda t: time.strftime("%Y%m%d%H%M%S", time.gmtime(t))
    times = (fmt(now - 3600), fmt(now + 30 * 86400))

    # Second-level zones in parallel, then the TLDs with their children's DS, then the root.
    def one(z):
        if z["kind"] == "silent":
            return z["name"], ""
        return z["name"], sign(out, z["name"], z["mode"], zone_text(z), times)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        ds = dict(ex.map(one, zones.values()))
    root_ds = ""
    for tld, (mode, _) in TLDS.items():
        text = tld_text(tld, zones)
        text += "".join(ds[z] for z in zones if zones[z]["tld"] == tld and ds[z])
        root_ds += sign(out, tld, mode, text, times)
    sign(out, ".", "nsec", root_text() + root_ds, times)

    inst_zones = {"root": ["."], "tld": list(TLDS), "a": [], "b": [], "slow": []}
    for z in zones.values():
        if z["nsd"]:
            inst_zones[z["nsd"]].append(z["name"])
    prov_addrs = {"a": [], "b": []}
    for k in range(PROVIDERS):
        prov_addrs["ab"[k % 2]] += [f"127.55.4.{2 * k + 1}", f"127.55.4.{2 * k + 2}"]
    nsd_conf(out, "root", ROOT, inst_zones["root"])
    nsd_conf(out, "tld", [a for _, addrs in TLDS.values() for a in addrs], inst_zones["tld"])
    nsd_conf(out, "a", POOL["a"] + prov_addrs["a"], inst_zones["a"])
    nsd_conf(out, "b", POOL["b"] + prov_addrs["b"], inst_zones["b"])
    nsd_conf(out, "slow", [SLOW_BACKEND[0]], inst_zones["slow"])

    with open(f"{out}/root.hints", "w") as f:
        f.write("; root hints of the recursion bench hierarchy -- loopback only\n")
        for i, a in enumerate(ROOT):
            f.write(f". 3600000 NS {'ab'[i]}.root-servers.net.\n{'ab'[i]}.root-servers.net. 3600000 A {a}\n")
    with open(f"{out}/netsim.json", "w") as f:
        json.dump({"slow": [{"listen": a, "delay_ms": d, "backend": list(SLOW_BACKEND)} for a, d in SLOW],
                   "silent": SILENT_HALF + SILENT_FULL}, f, indent=1)
    with open(f"{out}/cold.txt", "w") as f:
        f.write("\n".join(cold) + "\n")
    count = lambda pred: sum(1 for z in pop if pred(z))
    hosts = sum(len(z["hosts"]) for z in pop)
    summary = (f"{len(pop)} zones ({count(lambda z: z['mode'] == 'nsec')} NSEC, "
               f"{count(lambda z: z['mode'] == 'nsec3')} NSEC3, {count(lambda z: z['mode'] == 'unsigned')} unsigned; "
               f"{count(lambda z: z['kind'] == 'provider')} at {PROVIDERS} providers, "
               f"{count(lambda z: z['kind'] == 'slow')} slow, {count(lambda z: z['kind'] == 'halfsilent')} half-silent), "
               f"{hosts} hosts of which {ncname} CNAMEs; cold set {len(cold)} names "
               f"({len(cold) - hosts} NXDOMAIN)")
    with open(f"{out}/summary", "w") as f:
        f.write(summary + "\n")
    with open(f"{out}/stamp", "w") as f:
        f.write(f"zones={nzones} seed={seed} signed={int(now)}\n")
    print(f"gen.py: {summary}; generated and signed in {time.time() - t0:.1f} s", file=sys.stderr)


def cmd_names(zone, count, seed):
    rng = random.Random(seed)
    w = sys.stdout.write
    for i in range(count):
        lab = "".join(rng.choice(ALNUM) for _ in range(rng.randint(5, 12)))
        w(f"{lab}{i:x}.{zone} A\n")


def main():
    a = sys.argv[1:]
    if a[:1] == ["net"] and len(a) >= 2:
        opts = dict(zip(a[2::2], a[3::2]))
        cmd_net(os.path.abspath(a[1]), int(opts.get("--zones", 400)), int(opts.get("--seed", 1)))
    elif a[:1] == ["names"] and len(a) == 4:
        cmd_names(a[1], int(a[2]), int(a[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
