// Logs as kube-proxy prints them: klog's text format by default, JSON lines with
// --logging-format=json (or logging.format in the config file); a bad level or format is a
// usage error naming the flag, not a crash inside pino.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { klogLine } from '../../src/observe/klog.js';
import { runConfig } from '../../src/config/run-config.js';
import { parseKlogLine } from '../lab/klog-lines.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
const LOG = new URL('../../src/observe/log.js', import.meta.url).href;

test('a pino record as a klog line: severity, month and day, time to the microsecond, pid in 7 columns, source, quoted message, key=value fields', () => {
  const time = new Date(2026, 11, 4, 6, 1, 2, 345).getTime();
  const line = klogLine({ level: 40, time, component: 'kube-xdp', msg: 'cannot set oom_score_adj', oomScoreAdj: -999, err: { type: 'Error', message: 'EACCES: "denied"', stack: 'x' }, ok: true, none: null, list: ['a', 'b'], obj: { k: 1 } }, 42);
  assert.equal(line, 'W1204 06:01:02.345000      42 kube-xdp] "cannot set oom_score_adj" oomScoreAdj=-999 err="EACCES: \\"denied\\"" ok=true none=null list=["a","b"] obj={"k":1}\n');
  for (const [level, letter] of [[10, 'I'], [20, 'I'], [30, 'I'], [50, 'E'], [60, 'F']] as const) {
    assert.equal(klogLine({ level, time, msg: 'm' }, 1)[0], letter, `pino level ${level}`);
  }
});

test('klog lines read back into the record they came from (the tests\' reader)', () => {
  const rec = { level: 30, time: Date.now(), component: 'kube-xdp', msg: 'synced', writes: 12, took: '2 ms', note: 'a b=c "d"', nested: { a: [1, 'x y'] } };
  const back = parseKlogLine(klogLine(rec).trimEnd());
  assert.deepEqual(back, { msg: 'synced', level: 30, source: 'kube-xdp', writes: 12, took: '2 ms', note: 'a b=c "d"', nested: { a: [1, 'x y'] } });
  assert.equal(parseKlogLine('{"level":30,"msg":"synced"}'), null, 'a JSON line is not a klog line');
});

/** What a process logging through createLogger(level, format) prints on stderr. */
function logged(format: 'text' | 'json'): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { createLogger } = await import(${JSON.stringify(LOG)}); const l = createLogger('info', ${JSON.stringify(format)}); l.info({ services: 3 }, 'synced'); l.debug('hidden'); l.warn('careful'); l.flush();`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

test('createLogger prints klog text by default, JSON lines when asked, at the level set', () => {
  const text = logged('text').trimEnd().split('\n');
  assert.equal(text.length, 2, text.join('\n'));
  assert.deepEqual(text.map((l) => parseKlogLine(l)), [
    { msg: 'synced', level: 30, source: 'kube-xdp', services: 3 },
    { msg: 'careful', level: 40, source: 'kube-xdp' },
  ]);
  const json = logged('json').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(json.map((l) => [l.level, l.msg, l.services]), [[30, 'synced', 3], [40, 'careful', undefined]]);
});

test('--logging-format and logging.format: text by default, json when set, the flag wins; bad values and levels are usage errors', () => {
  const base = ['--source', 'file:/dev/null', '--node-name', 'n1', '--mode', 'iptables'];
  assert.equal(runConfig(base, {}).logFormat, 'text');
  assert.equal(runConfig([...base, '--logging-format', 'json'], {}).logFormat, 'json');
  assert.equal(runConfig(base, { KUBE_XDP_LOGGING_FORMAT: 'json' }).logFormat, 'json');
  assert.throws(() => runConfig([...base, '--logging-format', 'yaml'], {}), /--logging-format: "yaml" is not one of text, json/);
  assert.throws(() => runConfig([...base, '--log-level', 'verbose'], {}), /--log-level: "verbose" is not one of fatal, error, warn, info, debug, trace, silent/);
  const dir = mkdtempSync(join(tmpdir(), 'kx-klog-'));
  try {
    const conf = (format: string) => {
      const f = join(dir, `${format || 'empty'}.conf`);
      writeFileSync(f, `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nlogging:\n  format: "${format}"\n`);
      return f;
    };
    assert.equal(runConfig([...base, '--config', conf('')], {}).logFormat, 'text', 'kubeadm writes format "": kube-proxy\'s default');
    assert.equal(runConfig([...base, '--config', conf('json')], {}).logFormat, 'json');
    assert.equal(runConfig([...base, '--config', conf('json'), '--logging-format', 'text'], {}).logFormat, 'text', 'the flag wins');
    assert.throws(() => runConfig([...base, '--config', conf('xml')], {}), /logging\.format: "xml" is not a logging format \(text, json\)/);
    // the whole command: a usage error (exit 2) that names the flag, not pino's stack
    const r = spawnSync(process.execPath, [CLI, 'run', ...base, '--log-level', 'verbose'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--log-level: "verbose" is not one of/);
    assert.doesNotMatch(r.stderr, /at .*pino/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
