#!/usr/bin/python3
# peer — the consumer a user would write instead of csmetricsd, the benchmark's peer:
# confluent_kafka + redis-py (Debian packages), parse JSON, pre-aggregate per-agent
# counters per day and month in a dict, flush them with one pipeline a second, then commit.
# At-least-once only: a crash between flush and commit counts a second time; no dedup.
# usage: peer.py BROKERS GROUP REDIS_SOCKET N  -> exits after N messages, prints key=value.
import json, sys, time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
import redis
from confluent_kafka import Consumer

brokers, group, sock, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
TZ = timezone(timedelta(hours=8))  # Asia/Shanghai
consumer = Consumer({"bootstrap.servers": brokers, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                     "queued.min.messages": 1000000})  # librdkafka 2.0.2 stalls without it
r = redis.Redis(unix_socket_path=sock)
t0, assigned = time.monotonic(), []
consumer.subscribe(["cs.chat", "shop.orders", "cs.reviews"],
                   on_assign=lambda c, p: assigned.append(time.monotonic()))
counts, customers = defaultdict(int), defaultdict(set)
order_owner = {}  # order_id -> (shop, agent) of its created event
seen, flushed, last_flush = 0, 0, time.monotonic()

def add(shop, agent, ts, field, n=1, customer=None):
    t = (datetime.fromtimestamp(ts / 1000, TZ) if isinstance(ts, int)
         else datetime.fromisoformat(ts).astimezone(TZ))
    for period in (t.strftime("%Y-%m-%d"), t.strftime("%Y-%m")):
        key = "peer:%s:%s:%s" % (shop, agent, period)
        counts[key, field] += n
        if customer:
            customers[key + ":" + field].add(customer)

def flush():
    p = r.pipeline(transaction=False)
    for (key, field), n in counts.items():
        p.hincrby(key, field, n)
    for key, members in customers.items():
        p.sadd(key, *members)
    p.execute()
    counts.clear(), customers.clear()
    if seen > flushed:  # offsets after the figures: a crash in between counts twice
        consumer.commit(asynchronous=False)

while seen < want:
    for m in consumer.consume(num_messages=1000, timeout=0.5):
        if m.error():
            continue
        seen += 1
        try:
            e = json.loads(m.value())
            t, shop, ts = e["type"], e.get("shop_id", "default"), e["ts"]
            if t == "message":
                add(shop, e["agent_id"], ts, "msg_" + e["direction"],
                    customer=e["customer_id"] if e["direction"] == "in" else None)
            elif t == "complaint":
                add(shop, e["agent_id"], ts, "complaints")
            elif t == "created":
                agent = e.get("agent_id", "-")  # "-": unattributed
                order_owner[e["order_id"]] = (shop, agent)
                add(shop, agent, ts, "orders", customer=e["customer_id"])
                add(shop, agent, ts, "order_cents", round(float(e["amount"]) * 100))
            elif t in ("paid", "refunded") and e["order_id"] in order_owner:
                s, a = order_owner[e["order_id"]]
                add(s, a, ts, t + "_orders")
                add(s, a, ts, t + "_cents", round(float(e["amount"]) * 100))
        except (ValueError, KeyError, TypeError):
            counts["peer:bad", "messages"] += 1
    if time.monotonic() - last_flush >= 1.0 or seen >= want:
        flush()
        flushed, last_flush = seen, time.monotonic()
end = time.monotonic()
consumer.close()
a = assigned[0] if assigned else t0
print("consumed=%d assigned_ms=%.0f elapsed_ms=%.0f rate=%.0f rate_total=%.0f"
      % (seen, (a - t0) * 1e3, (end - t0) * 1e3, seen / (end - a), seen / (end - t0)))
