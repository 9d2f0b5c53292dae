"""ledger — an independent Python reading of events.md / metrics.md: the figures a stream
of events must produce, computed without the daemon (used by scripts/bench and the fault suite,
tests/faults/faults.py). Standard library only.

Ledger().feed(json_text) for every message of a stream in ts order (as `csmetrics simulate
--jsonl` writes it); Ledger.result() gives {(shop, agent or None for the team, period label):
{figure: int}} for day and month periods in Asia/Shanghai; redis_state() reads the same
figures back through `csmetrics show --json`; compare() lists the differences."""
import collections
import datetime
import json
import re
import subprocess
from decimal import Decimal

# An independent reading of events.md / metrics.md for the figures it checks: valid events
# only, each event_id once, orders without agent_id attributed to the customer's latest
# message (same shop, within 72 h, ts at or before the order's), follow-ups by the order's
# created event, distinct customers and orders per (owner, period), money in integer cents.
AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
REQUIRED = {"message": ("conversation_id", "agent_id", "customer_id", "direction"),
            "transfer": ("conversation_id", "agent_id", "to_agent_id", "customer_id"),
            "complaint": ("agent_id", "customer_id"),
            "created": ("order_id", "customer_id", "amount"), "paid": ("order_id", "amount"),
            "refunded": ("order_id", "amount"), "cancelled": ("order_id",),
            "flagged": ("order_id", "reason"), "review": ("agent_id", "period"),
            "target": ("agent_id", "period", "amount"), "absence": ("agent_id", "from", "to")}
COUNTS = ("inquiries", "ordered", "paid_customers", "orders", "paid_orders", "refunded_orders",
          "cancelled_orders", "flagged_orders", "complaints")
MONEY = ("sales", "order_amount", "refund_amount")
DAY_MS, TZ_MS, WINDOW_MS = 86400000, 8 * 3600000, 72 * 3600000  # Asia/Shanghai: no DST


def cents(a):
    """Contract amount -> cents, or None when it is bad input."""
    if isinstance(a, bool) or not isinstance(a, (str, int, Decimal)):
        return None
    s = a if isinstance(a, str) else str(a)
    if not AMOUNT.match(s):
        return None
    whole, _, frac = s.partition(".")
    if frac[2:].strip("0"):
        return None
    c = int(whole) * 100 + int((frac + "00")[:2])
    return c if c < 10 ** 14 else None


def ts_ms(ts):
    if isinstance(ts, int) and not isinstance(ts, bool):
        return ts
    d = datetime.datetime.fromisoformat(ts)
    return (int(d.timestamp()) * 1000) + d.microsecond // 1000


class Ledger:
    def __init__(self, keep_valid=False):
        self.keep_valid = [] if keep_valid else None  # raw JSON of every counted event
        self.figs = collections.defaultdict(lambda: collections.defaultdict(int))
        self.sets = collections.defaultdict(set)
        self.labels = {}
        self.seen = set()
        self.orders = {}  # order_id -> (shop, agent or None, customer)
        self.last_msg = {}  # (shop, customer) -> (ts, agent)
        self.n = collections.Counter()

    def periods(self, ms):
        d = (ms + TZ_MS) // DAY_MS
        if d not in self.labels:
            day = datetime.date(1970, 1, 1) + datetime.timedelta(days=d)
            self.labels[d] = (day.isoformat(), day.isoformat()[:7])
        return self.labels[d]

    def add(self, shop, agent, ms, fig, n=1, member=None):
        for period in self.periods(ms):
            for owner in ((shop, agent, period), (shop, None, period)):
                if member is None:
                    self.figs[owner][fig] += n
                else:
                    self.sets[owner + (fig,)].add(member)

    def feed(self, js):
        try:
            e = json.loads(js, parse_float=Decimal)
            t = e["type"]
            for f in ("event_id", "ts") + REQUIRED[t]:
                if f not in e:
                    raise KeyError(f)
            ms = ts_ms(e["ts"])
            if "amount" in e and cents(e["amount"]) is None:
                raise ValueError("amount")
        except (ValueError, KeyError, TypeError, AttributeError):
            self.n["bad"] += 1
            return
        if e["event_id"] in self.seen:
            self.n["duplicates"] += 1
            return
        self.seen.add(e["event_id"])
        self.n["events"] += 1
        if self.keep_valid is not None:
            self.keep_valid.append(js)
        shop = e.get("shop_id", "default")
        if t == "message":
            self.last_msg[shop, e["customer_id"]] = (ms, e["agent_id"])
            if e["direction"] == "in":
                self.add(shop, e["agent_id"], ms, "inquiries", member=e["customer_id"])
        elif t == "transfer":
            self.add(shop, e["to_agent_id"], ms, "inquiries", member=e["customer_id"])
        elif t == "complaint":
            self.add(shop, e["agent_id"], ms, "complaints")
        elif t == "created":
            agent = e.get("agent_id")
            if agent is None:  # the stream is in ts order: the latest message so far
                last = self.last_msg.get((shop, e["customer_id"]))
                agent = last[1] if last and ms - last[0] <= WINDOW_MS else None
                self.n["attributed" if agent else "unattributed"] += 1
            self.orders[e["order_id"]] = (shop, agent, e["customer_id"])
            if agent:
                self.add(shop, agent, ms, "orders")
                self.add(shop, agent, ms, "order_amount", cents(e["amount"]))
                self.add(shop, agent, ms, "ordered", member=e["customer_id"])
        elif t in ("paid", "refunded", "cancelled", "flagged"):
            if e["order_id"] not in self.orders:
                self.n["orphans"] += 1
                return
            shop, agent, cust = self.orders[e["order_id"]]
            if not agent:
                return
            self.add(shop, agent, ms, t + "_orders", member=e["order_id"])
            if t == "paid":
                self.add(shop, agent, ms, "sales", cents(e["amount"]))
                self.add(shop, agent, ms, "paid_customers", member=cust)
            elif t == "refunded":
                self.add(shop, agent, ms, "refund_amount", cents(e["amount"]))

    def result(self):
        """(shop, agent or None, period) -> {figure: int (cents for money)}."""
        out = {k: dict(v) for k, v in self.figs.items()}
        for (shop, agent, period, fig), members in self.sets.items():
            out.setdefault((shop, agent, period), {})[fig] = len(members)
        return out


def redis_state(csmetrics, cfg, shops_agents):
    """(shop, agent or None, period) -> {figure: int} as `csmetrics show --json` reports it."""
    out = {}
    for shop, agents in shops_agents.items():
        for agent in [None] + sorted(agents):
            who = ["--team"] if agent is None else ["--agent", agent]
            p = subprocess.run([csmetrics, "-c", cfg, "show", "--shop", shop, "--json"] + who,
                               capture_output=True, text=True)
            if p.returncode != 0:
                out[shop, agent, "*"] = {"show": p.stderr.strip()}
                continue
            for line in p.stdout.splitlines():
                d = json.loads(line, parse_float=Decimal)
                m = d["metrics"]
                f = {k: int(m.get(k) or 0) for k in COUNTS}
                f.update({k: int(Decimal(m.get(k) or 0) * 100) for k in MONEY})
                out[shop, agent, d["period"]] = f
    return out


def compare(want, got):
    """Lines describing every difference; figures absent on one side count as 0."""
    diffs = []
    for key in sorted(set(want) | set(got), key=lambda k: (k[0], k[1] or "", k[2])):
        w, g = want.get(key, {}), got.get(key, {})
        if "show" in g:
            diffs.append("%s: show failed: %s" % (key, g["show"]))
            continue
        for fig in COUNTS + MONEY:
            if w.get(fig, 0) != g.get(fig, 0):
                diffs.append("%s/%s/%s %s: ledger %s, redis %s"
                             % (key[0], key[1] or "team", key[2], fig, w.get(fig, 0),
                                g.get(fig, 0)))
    return diffs


def shops_agents(want):
    """{shop: {agent, ...}} of a ledger result."""
    out = collections.defaultdict(set)
    for shop, agent, _ in want:
        if agent is not None:
            out[shop].add(agent)
    return out


def lost_extra(want, got):
    """(lost, extra): over the team rows' count and money figures, the sum of what the ledger
    has and Redis lacks, and of what Redis has beyond the ledger (0, 0 when equal)."""
    lost = extra = 0
    for key in set(want) | set(got):
        if key[1] is not None:
            continue
        w, g = want.get(key, {}), got.get(key, {})
        if "show" in g:
            lost += sum(w.get(f, 0) for f in COUNTS)
            continue
        for fig in COUNTS:
            d = g.get(fig, 0) - w.get(fig, 0)
            lost += max(0, -d)
            extra += max(0, d)
    return lost, extra


def parse_summary(text):
    """The key=value pairs of simulate's last 'simulate: ...' line on stderr; {} if none."""
    line = [l for l in text.splitlines() if l.startswith("simulate: ")]
    if not line:
        return {}
    return {k: v for k, v in (kv.split("=", 1) for kv in line[-1].split()[1:] if "=" in kv)}
