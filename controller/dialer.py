"""The dialer: which task dials next, on which node, and the routing of node events to calls.

Greenlets it owns (all started by `start`, all ended by `stop`):

- `_route`: takes raw ESL events that `on_esl` only enqueued, converts them
  (controller.events.from_esl) and hands each to its call's driver;
- `_loop`: every `tick` seconds reads task notices (Redis TASK_CHANNEL), re-reads running
  tasks every `reload_s`, and dials: per line, free line slots go to tasks in fair order
  (core.pacing.fair_order), each task within its window, its own concurrency and per-slot
  interval, each node within its calls-per-second, and a task that depends on agents
  (predictive, 转人工全忙暂停) within what its group's free agents allow
  (core.transfer.dial_gate);
- `_writer`: persists and publishes call transitions in batches;
- `_leases`: renews the Redis slot leases of live calls.

When a node's link comes up (first connect or reconnect), `_resync` compares the node's live
channels (`show channels as json`) with the calls we think are live there: missed answers
are replayed, calls that ended unseen end without a guessed status (the CDR fills it in),
and after a restart this controller's calls still live on the switch are taken over.
"""

from __future__ import annotations

import json
import logging
import time
import uuid as uuidlib
from collections import Counter, defaultdict
from datetime import timedelta

import gevent
import redis
from gevent.queue import Empty, Queue

from controller.call_machine import PRE_ANSWER, CallRecord
from controller.calls import UNCONFIRMED, CallDriver, DriverServices, route_key
from controller.esl import EslError, NodeLink
from controller.events import (
    Adopt,
    Answered,
    ChannelEvent,
    LinkChanged,
    Progress,
    Start,
    Vanished,
    from_esl,
)
from controller.handoff import AnswerHandler, opening_prompt
from controller.store import Store, TaskRun
from core import clock
from core.call_status import CallState
from core.enums import TaskState
from core.pacing import (
    Demand,
    LineSlots,
    PacingError,
    RateLimiter,
    SlotPacer,
    fair_order,
    pick_node,
)
from core.presence import Presence
from core.redis_conn import TASK_CHANNEL, publish_task_change
from core.transfer import Gate, dial_gate

log = logging.getLogger(__name__)

CALLS_CHANNEL = "cc:task:{task_id}:calls"  # live call transitions, for the console
RESYNC_GRACE_S = 1.0  # a call originated this recently may not be in `show channels` yet
HANDLER_STOP_S = 5.0  # at shutdown, how long handlers get to save what they have


def calls_channel(task_id: int) -> str:
    return CALLS_CHANNEL.format(task_id=task_id)


class Dialer:
    def __init__(self, store: Store, conn: redis.Redis, links: dict[str, NodeLink], *,
                 handler: AnswerHandler = opening_prompt, tick: float = 0.05,
                 reload_s: float = 2.0, cps: float = 30.0, lease_s: float = 30.0,
                 write_every: float = 0.1, cdr_wait_s: float = 120.0,
                 max_per_round: int = 50, node_lost_s: float = 60.0,
                 presence: Presence | None = None, detector: str = "none"):
        self.store, self.conn, self.links = store, conn, links
        self.presence = presence  # agents' presence, for tasks that depend on agents
        self.handler, self.tick, self.reload_s, self.write_every = handler, tick, reload_s, write_every
        self.slots = LineSlots(conn, lease_s=lease_s)
        self.lease_s = lease_s
        self.cdr_wait_s = cdr_wait_s  # how long an unconfirmed originate waits for its CDR
        self.max_per_round = max_per_round  # numbers one task claims per round (latency)
        self.node_lost_s = node_lost_s  # a node down this long: its calls end unseen
        self.down_since: dict[str, float] = {}
        self.cps = cps
        self.tasks: dict[int, TaskRun] = {}
        self.pacers: dict[int, SlotPacer] = {}
        self.last_dial: dict[int, float] = {}
        self.held_since_check: dict[int, float] = {}  # agent-held tasks: last "done?" check
        self.idle_until: dict[int, float] = {}
        self.calls: dict[str, CallDriver] = {}
        self.live_by_task: Counter[int] = Counter()
        self.load_by_node: Counter[str] = Counter()
        self.up: set[str] = set()
        self.limiters = {name: RateLimiter(cps, burst=max(1.0, cps / 10)) for name in links}
        self.orphans: dict[str, list] = defaultdict(list)  # node → (plan, state) after restart
        self._esl: Queue = Queue()
        self._changes: dict[str, CallRecord] = {}
        self._finished: list[CallRecord] = []
        self._transitions: list[CallRecord] = []
        self._greenlets: list[gevent.Greenlet] = []
        self._stopping = False
        self.dialling = True  # False: links, resync and take-over run, no new calls yet
        self._pubsub = None
        self._last_reload = 0.0
        self.services = DriverServices(link=self._link, changed=self._changed,
                                       finished=self._on_finished, handler=handler,
                                       detector=detector)
        self.originated = 0  # counters for logs, tests and the benchmark
        self.vanished = 0
        self.adopted = 0
        self.lags: list | None = None  # set to a list to sample event lag (benchmark)

    # -- life -----------------------------------------------------------------------------

    def start(self, dial: bool = True) -> None:
        """Start routing, resync and writing; `dial=False` holds new calls back until
        `open()` (the process has more to start first)."""
        self.dialling = dial
        for plan, state in self.store.unfinished():
            self.orphans[plan.node].append((plan, state))
        self._subscribe()
        self._reload()
        self._greenlets = [gevent.spawn(self._route), gevent.spawn(self._loop),
                           gevent.spawn(self._writer), gevent.spawn(self._leases)]

    def open(self) -> None:
        self.dialling = True

    def resynced(self) -> bool:
        """Every node's link is up and its live calls compared with ours."""
        return self.up >= set(self.links)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        # Handlers save what they have (a dialogue its turns so far) and leave the channel
        # to the controller started next, which takes the call over.
        handlers = [g for g in (d.stop_handler() for d in list(self.calls.values())) if g]
        gevent.joinall(handlers, timeout=HANDLER_STOP_S)
        gevent.joinall(self._greenlets, timeout=timeout)
        gevent.killall(self._greenlets, timeout=timeout)
        # Calls go on on the switch; a controller started again takes them over.
        for driver in list(self.calls.values()):
            driver.stop()
        self._flush()
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass

    # -- hooks for NodeLink (they only enqueue) -------------------------------------------

    def on_esl(self, node: str, headers: dict, body: str | None) -> None:
        self._esl.put((node, headers, body, time.time()) if self.lags is not None
                      else (node, headers, body))

    def on_link(self, node: str, up: bool) -> None:
        self._esl.put(LinkChanged(node, up))

    # -- routing --------------------------------------------------------------------------

    def _route(self) -> None:
        while not self._stopping:
            try:
                item = self._esl.get(timeout=0.5)
            except Empty:
                continue
            if isinstance(item, LinkChanged):
                self._link_changed(item)
                continue
            event = from_esl(*item[:3])
            if self.lags is not None and isinstance(event, ChannelEvent) and event.at:
                now = time.time()
                # (switch's event time → here, our dispatch queue → here)
                self.lags.append((now - event.at, now - item[3] if len(item) > 3 else 0.0))
            key = route_key(event) if event is not None else None
            driver = self.calls.get(key) if key else None
            if driver is not None:
                driver.put(event)

    def _link_changed(self, change: LinkChanged) -> None:
        if change.up:
            gevent.spawn(self._resync, change.node)
        else:
            self.up.discard(change.node)
            self.down_since.setdefault(change.node, time.monotonic())
            log.warning("node %s is down: it takes no new calls", change.node)

    def _resync(self, node: str) -> None:
        link = self.links[node]
        try:
            live = link.channels()
        except EslError as exc:
            log.warning("node %s: resync failed (%s); retrying", node, exc)
            if link.up.is_set() and not self._stopping:
                gevent.spawn_later(2.0, self._resync, node)
            return
        now = time.time()
        for driver in [d for d in self.calls.values() if d.plan.node == node]:
            row = live.get(driver.uuid)
            state = driver.record.state
            if row is None:
                # Not (or no longer) on the switch. A call originated a moment ago may not
                # be listed yet: ask about each one again, by uuid, a little later.
                gevent.spawn_later(RESYNC_GRACE_S, self._confirm_gone, link, driver)
                continue
            callstate = (row.get("callstate") or "").upper()
            if callstate == "ACTIVE" and state in PRE_ANSWER:
                driver.put(Answered(node, driver.uuid, now))
            elif callstate == "EARLY" and state in (CallState.ORIGINATING, CallState.RINGING):
                driver.put(Progress(node, driver.uuid, now, media=True))
        for plan, _state in self.orphans.pop(node, []):
            if plan.uuid in self.calls:
                continue
            row = live.get(plan.uuid)
            if row is not None:
                try:
                    self.slots.acquire(plan.line_id, plan.task_id, plan.uuid, -1, -1)
                except PacingError as exc:
                    log.warning("call %s: cannot re-take its slot: %s", plan.uuid, exc)
                self.adopted += 1
                self._spawn(CallRecord(plan), Adopt(plan.uuid, row.get("callstate") or ""))
                pacer = self.pacers.setdefault(plan.task_id, SlotPacer(0))
                pacer.active += 1
            else:
                self.vanished += 1
                # Never seen progressing: perhaps never sent. Without a CDR in time it is
                # taken as not dialled (Store.resolve_unconfirmed).
                unsure = UNCONFIRMED if _state in (None, CallState.ORIGINATING) else None
                self._spawn(CallRecord(plan, state=CallState.ORIGINATING, job_error=unsure),
                            Vanished(plan.uuid))
        self.up.add(node)
        self.down_since.pop(node, None)
        log.info("node %s: resynchronised (%d live channels)", node, len(live))

    def _confirm_gone(self, link: NodeLink, driver: CallDriver) -> None:
        if driver.record.state == CallState.ENDED or driver.uuid not in self.calls:
            return
        try:
            exists = link.api(f"uuid_exists {driver.uuid}").strip()
        except EslError as exc:
            log.info("call %s: uuid_exists: %s (the next resync decides)", driver.uuid, exc)
            return
        if exists == "false":
            self.vanished += 1
            driver.put(Vanished(driver.uuid))

    def _give_up_lost_nodes(self) -> None:
        """Calls on a node down for longer than `node_lost_s` are ended without a status
        (their CDRs, if the node comes back, tell what happened), so that their slots and
        numbers do not wait for it forever."""
        now = time.monotonic()
        for node, since in list(self.down_since.items()):
            if now - since < self.node_lost_s:
                continue
            lost = [d for d in self.calls.values() if d.plan.node == node]
            if lost:
                log.warning("node %s down for %.0f s: ending its %d calls unseen", node,
                            now - since, len(lost))
            for driver in lost:
                self.vanished += 1
                driver.put(Vanished(driver.uuid))

    def _link(self, node: str) -> NodeLink:
        return self.links[node]

    # -- the dialling loop ----------------------------------------------------------------

    def _subscribe(self) -> None:
        try:
            self._pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(TASK_CHANNEL)
        except redis.RedisError as exc:
            log.warning("cannot subscribe to task notices (%s): polling the database only", exc)
            self._pubsub = None

    def _notices(self) -> bool:
        if self._pubsub is None:
            return False
        got = False
        try:
            for _ in range(100):
                message = self._pubsub.get_message(timeout=0.0)
                if message is None:
                    break
                got = True
        except redis.RedisError as exc:
            log.warning("task notices lost (%s): re-subscribing", exc)
            self._subscribe()
        return got

    def _reload(self) -> None:
        self._last_reload = time.monotonic()
        tasks = self.store.running_tasks()
        for task_id in set(self.tasks) - set(tasks):
            log.info("task %s is no longer running: no new calls, live ones finish", task_id)
            self.idle_until.pop(task_id, None)
        for task in tasks.values():
            pacer = self.pacers.get(task.id)
            if pacer is None:
                self.pacers[task.id] = SlotPacer(task.max_concurrency, task.call_interval_s)
            else:
                pacer.resize(task.max_concurrency, task.call_interval_s)
            if task.id not in self.tasks:
                self.idle_until.pop(task.id, None)  # resumed: look for numbers at once
        self.tasks = tasks

    def _loop(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            try:
                if self._notices() or started - self._last_reload >= self.reload_s:
                    self._reload()
                self._dial_round()
            except (PacingError, redis.RedisError) as exc:
                log.warning("dialling paused this round: %s", exc)
            except Exception:  # noqa: BLE001 — one bad round must not stop dialling
                log.exception("dialling round failed")
            gevent.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    def _dial_round(self) -> None:
        if not self.up or not self.dialling:
            return
        now_dt = clock.now()
        now = time.time()
        by_line: dict[int, list[TaskRun]] = defaultdict(list)
        for task in self.tasks.values():
            if self.idle_until.get(task.id, 0) > now:
                continue
            if task.window is None or not task.window.is_open(now_dt):
                continue
            by_line[task.line.id].append(task)
        for line_id, tasks in by_line.items():
            line = tasks[0].line
            budget = line.max_concurrency - self.slots.line_count(line_id)
            if budget <= 0:
                continue
            active = {t.id: self.slots.task_count(t.id) for t in tasks}
            caps = {t.id: self._agent_cap(t, max(0, min(t.max_concurrency - active[t.id],
                                                        self.pacers[t.id].free(now))))
                    for t in tasks}
            alloc: Counter[int] = Counter()
            maxima = {t.id: t.max_concurrency for t in tasks}
            while budget > 0:
                order = fair_order(
                    Demand(t.id, active[t.id] + alloc[t.id], maxima[t.id],
                           self.last_dial.get(t.id, 0.0))
                    for t in tasks if alloc[t.id] < caps[t.id])
                if not order:
                    break
                alloc[order[0]] += 1
                self.last_dial[order[0]] = now + alloc[order[0]] * 1e-6
                budget -= 1
            for task in tasks:
                if alloc[task.id]:
                    self._dial(task, min(alloc[task.id], self.max_per_round), now_dt, now)

    def _agent_cap(self, task: TaskRun, cap: int) -> int:
        """How many of `cap` calls a task that depends on agents may place now, by
        core.transfer.dial_gate over its group's free agents and its calls not yet with an
        agent; pauses the task when 转人工全忙暂停 says so."""
        if not cap or not task.needs_agents or self.presence is None:
            return cap
        try:
            free = self.presence.free_count(task.agent_ids)
        except redis.RedisError as exc:
            log.warning("task %s: agents' presence unreadable (%s): not dialling", task.id, exc)
            return 0
        waiting = sum(1 for d in self.calls.values()
                      if d.plan.task_id == task.id and d.record.state != CallState.BRIDGED)
        for n in range(cap):
            gate = dial_gate(predictive=task.predictive,
                             pause_when_agents_busy=task.pause_when_agents_busy,
                             predictive_busy_to_ai=task.predictive_busy_to_ai,
                             free_agents=free, predictive_in_flight=waiting + n)
            if gate == Gate.PAUSE:
                if self.store.pause_for_agents(task.id):
                    log.info("task %s paused: no agent free (转人工全忙暂停)", task.id)
                    publish_task_change(self.conn, task.id, str(TaskState.PAUSED))
                self.tasks.pop(task.id, None)
                return 0
            if gate == Gate.HOLD:
                if not n and not self.live_by_task.get(task.id):
                    self._maybe_finish_held(task.id)
                return n
        return cap

    def _maybe_finish_held(self, task_id: int) -> None:
        """A task held for agents never reaches _dial, where running out of numbers is
        noticed: look (every reload_s) whether its last call was its last number."""
        now = time.monotonic()
        if now - self.held_since_check.get(task_id, 0.0) >= self.reload_s:
            self.held_since_check[task_id] = now
            self._maybe_finish(task_id)

    def _dial(self, task: TaskRun, want: int, now_dt, now: float) -> None:
        node = pick_node(task.line.fs_node, sorted(self.up), self.load_by_node)
        if node is None:
            return
        limiter = self.limiters.setdefault(node, RateLimiter(self.cps, max(1.0, self.cps / 10)))
        allowed = 0
        while allowed < want and limiter.try_take(now):
            allowed += 1
        if not allowed:
            return
        uuids = [str(uuidlib.uuid4()) for _ in range(allowed)]
        held = [u for u in uuids if self.slots.acquire(task.line.id, task.id, u,
                                                        task.line.max_concurrency,
                                                        task.max_concurrency)]
        plans = self.store.claim(task, node, held, now_dt) if held else []
        used = {p.uuid for p in plans}
        for u in held:
            if u not in used:
                self.slots.release(task.line.id, task.id, u)
        if len(plans) < len(held):
            self.idle_until[task.id] = now + 1.0
            self._maybe_finish(task.id)
        pacer = self.pacers[task.id]
        for plan in plans:
            pacer.take(now)
            self.originated += 1
            self._spawn(CallRecord(plan), Start(plan.uuid))

    def _spawn(self, record: CallRecord, first) -> None:
        driver = CallDriver(record, self.services)
        self.calls[record.plan.uuid] = driver
        self.live_by_task[record.plan.task_id] += 1
        self.load_by_node[record.plan.node] += 1
        driver.start(first)

    def _maybe_finish(self, task_id: int) -> None:
        if self.live_by_task.get(task_id, 0):
            return
        try:
            if self.slots.task_count(task_id):
                return  # another controller still has calls of it
        except PacingError:
            return
        state = self.store.finish_if_done(task_id, 0)
        if state is not None:
            log.info("task %s has no numbers left: %s", task_id, state)
            self.tasks.pop(task_id, None)
            try:
                self.conn.publish(TASK_CHANNEL, json.dumps({"task_id": task_id, "state": state}))
            except redis.RedisError:
                pass

    # -- call results ---------------------------------------------------------------------

    def _changed(self, record: CallRecord) -> None:
        # The row gets the latest state of each call per batch (its timestamps keep the
        # earlier ones); the console gets every transition.
        self._changes[record.plan.uuid] = record
        self._transitions.append(record)

    def _on_finished(self, record: CallRecord) -> None:
        plan = record.plan
        self.calls.pop(plan.uuid, None)
        self._changes.pop(plan.uuid, None)
        self._finished.append(record)
        self._transitions.append(record)
        self.live_by_task[plan.task_id] -= 1
        if self.live_by_task[plan.task_id] <= 0:
            del self.live_by_task[plan.task_id]
        self.load_by_node[plan.node] -= 1
        now = time.time()
        pacer = self.pacers.get(plan.task_id)
        if pacer is not None:
            pacer.release(now)
        try:
            self.slots.release(plan.line_id, plan.task_id, plan.uuid)
        except PacingError as exc:
            log.warning("call %s: slot not released (its lease will lapse): %s", plan.uuid, exc)
        if record.dialled:
            # A redial may now be due, or the task may be done.
            self.idle_until.pop(plan.task_id, None)

    def _writer(self) -> None:
        while not self._stopping:
            gevent.sleep(self.write_every)
            self._flush()

    def _flush(self) -> None:
        changes, self._changes = list(self._changes.values()), {}
        finished, self._finished = self._finished, []
        transitions, self._transitions = self._transitions, []
        if not changes and not finished:
            return
        try:
            self.store.apply(changes, finished)
        except Exception:  # noqa: BLE001 — keep them and try again next round
            log.exception("could not write %d call changes; retrying", len(changes) + len(finished))
            for rec in changes:
                self._changes.setdefault(rec.plan.uuid, rec)
            self._finished[:0] = finished
            self._transitions[:0] = transitions
            return
        self._publish(transitions)

    def _publish(self, records: list[CallRecord]) -> None:
        try:
            pipe = self.conn.pipeline(transaction=False)
            for rec in records:
                pipe.publish(calls_channel(rec.plan.task_id), json.dumps({
                    "uuid": rec.plan.uuid, "task_id": rec.plan.task_id,
                    "number_id": rec.plan.number_id, "phone": rec.plan.phone,
                    "state": rec.state, "status": rec.status,
                    "at": rec.ended_at or rec.answered_at or rec.ringing_at}))
            pipe.execute()
        except redis.RedisError as exc:
            log.info("live call events not published: %s", exc)

    def _leases(self) -> None:
        every = max(0.2, self.lease_s / 3)
        last_reconcile = 0.0
        while not self._stopping:
            gevent.sleep(every)
            held: dict[tuple[int, int], list[str]] = defaultdict(list)
            for driver in list(self.calls.values()):
                held[(driver.plan.line_id, driver.plan.task_id)].append(driver.uuid)
            try:
                self.slots.renew(held)
            except PacingError as exc:
                log.warning("%s", exc)
            self._give_up_lost_nodes()
            if time.monotonic() - last_reconcile > 5:
                last_reconcile = time.monotonic()
                try:
                    self.store.reconcile_statuses()
                    cutoff = clock.now() - timedelta(seconds=self.cdr_wait_s)
                    if self.store.resolve_unconfirmed(cutoff):
                        self.idle_until.clear()  # numbers came back to the queue
                except Exception:  # noqa: BLE001
                    log.exception("status reconciliation failed")
