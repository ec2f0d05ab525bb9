// The sync runner against a fake clock (node:test's mock timers, Date included): kube-proxy's
// BoundedFrequencyRunner rules — requests coalesced, runs at least minPeriod apart, a full sync
// every syncPeriod, retries with backoff — and one sync at a time when the sync is async: what
// arrives while it runs (a change, the periodic full sync) is run once, right after it.
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SyncRunner } from '../../src/sync/runner.js';

/** Lets promise continuations run (setImmediate is not mocked). */
const settle = () => new Promise<void>((r) => setImmediate(r));

interface Run { at: number; full: boolean }

function harness(opts: { minPeriodMs: number; syncPeriodMs: number; retryMs?: number }) {
  const runs: Run[] = [];
  const events: string[] = [];
  let active = 0, maxActive = 0;
  let gate: (() => void) | null = null;
  let blocking = false, failing = false;
  const runner = new SyncRunner(async (full) => {
    runs.push({ at: Date.now(), full });
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      if (blocking) await new Promise<void>((r) => (gate = r));
      if (failing) throw new Error('dataplane failed');
    } finally {
      active--;
    }
  }, opts, Date.now, { queued: () => events.push(`queued@${Date.now()}`), updated: () => events.push(`updated@${Date.now()}`) });
  const h = {
    runner, runs, events,
    get maxActive() { return maxActive; },
    block: (on: boolean) => { blocking = on; },
    fail: (on: boolean) => { failing = on; },
    /** Ends the sync that waits on the gate. */
    release: async () => { const g = gate; gate = null; g?.(); await settle(); },
    /** Moves the clock by ms, letting every sync started on the way finish its turn. */
    tick: async (ms: number) => {
      for (let i = 0; i <= ms; i += 10) {
        mock.timers.tick(0); // what is due now (a timeout of 0) runs now
        await settle();
        if (i < ms) mock.timers.tick(Math.min(10, ms - i));
        await settle();
      }
    },
  };
  return h;
}

describe('SyncRunner (fake clock)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  it('runs nothing before enable(); then at once; requests within minPeriod coalesce into one run at lastRun + minPeriod', async () => {
    const h = harness({ minPeriodMs: 1000, syncPeriodMs: 3_600_000 });
    h.runner.request();
    await h.tick(5000);
    assert.equal(h.runs.length, 0, 'nothing before the source synced');
    h.runner.enable();
    await h.tick(10);
    assert.deepEqual(h.runs, [{ at: 5000, full: false }]);
    for (let i = 0; i < 3; i++) { await h.tick(100); h.runner.request(); }
    await h.tick(2000);
    assert.deepEqual(h.runs.map((r) => r.at), [5000, 6000], 'three requests, one run, minPeriod after the last');
    h.runner.request(); // long after: runs at once
    await h.tick(10);
    assert.deepEqual(h.runs.map((r) => r.at), [5000, 6000, 7310]);
    await h.runner.stop();
  });

  it('asks for a full sync every syncPeriod; the periodic sync is not a queued change', async () => {
    const h = harness({ minPeriodMs: 0, syncPeriodMs: 30_000 });
    h.runner.enable();
    await h.tick(65_000);
    assert.deepEqual(h.runs, [{ at: 0, full: false }, { at: 30_000, full: true }, { at: 60_000, full: true }]);
    assert.deepEqual(h.events, ['queued@0', 'updated@0', 'updated@30000', 'updated@60000']);
    await h.runner.stop();
  });

  it('one sync at a time: changes and the periodic full sync that arrive while an async sync runs are run once, right after it, never concurrently', async () => {
    const h = harness({ minPeriodMs: 1000, syncPeriodMs: 30_000 });
    h.block(true);
    h.runner.enable();
    await h.tick(10);
    assert.equal(h.runs.length, 1);
    assert.equal(h.runner.busy, true);
    for (let i = 0; i < 5; i++) { h.runner.request(); await h.tick(10_000); } // 50 s: the period passed
    assert.equal(h.runs.length, 1, 'nothing starts while the sync runs');
    h.block(false);
    await h.release();
    await h.tick(10);
    assert.deepEqual(h.runs.slice(1), [{ at: 50_010, full: true }], 'one run after it (at once: minPeriod is long past), full (the period came)');
    assert.equal(h.maxActive, 1);
    // the changes that waited are reported queued again after the first sync's update
    assert.deepEqual(h.events.slice(0, 3), ['queued@0', 'queued@10', 'queued@10010']);
    assert.ok(h.events.includes('updated@50010') && h.events.indexOf('queued@50010') === h.events.indexOf('updated@50010') + 1, h.events.join(' '));
    await h.runner.stop();
  });

  it('a change during a sync is not starved by periodic syncs: it runs minPeriod after the sync started', async () => {
    const h = harness({ minPeriodMs: 1000, syncPeriodMs: 2000 });
    h.block(true);
    h.runner.enable();
    await h.tick(10);
    h.runner.request();
    h.block(false);
    await h.tick(300);
    await h.release(); // the first sync ends at 310
    await h.tick(1000);
    assert.deepEqual(h.runs.map((r) => r.at), [0, 1000]);
    await h.runner.stop();
  });

  it('a failed sync is retried with exponential backoff, as a full sync, and counts as queued', async () => {
    const h = harness({ minPeriodMs: 0, syncPeriodMs: 3_600_000, retryMs: 1000 });
    h.fail(true);
    h.runner.enable();
    await h.tick(7100);
    assert.deepEqual(h.runs, [{ at: 0, full: false }, { at: 1000, full: true }, { at: 3000, full: true }, { at: 7000, full: true }]);
    h.fail(false);
    await h.tick(8000);
    assert.deepEqual(h.runs.at(-1), { at: 15_000, full: true });
    assert.equal(h.events.at(-1), 'updated@15000');
    await h.tick(60_000);
    assert.equal(h.runs.length, 5, 'no run after the success');
    await h.runner.stop();
  });

  it('stop() waits for the running sync and nothing starts after it', async () => {
    const h = harness({ minPeriodMs: 0, syncPeriodMs: 1000 });
    h.block(true);
    h.runner.enable();
    await h.tick(10);
    let stopped = false;
    const stopping = h.runner.stop().then(() => { stopped = true; });
    await settle();
    assert.equal(stopped, false, 'the sync still runs');
    h.block(false);
    await h.release();
    await stopping;
    assert.equal(stopped, true);
    h.runner.request(true);
    await h.tick(5000);
    assert.equal(h.runs.length, 1);
  });
});
