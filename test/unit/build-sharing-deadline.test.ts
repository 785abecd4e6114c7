// The parts buildFunctionImage() shares across its steps, without Docker or a registry: one build per
// image in a process (lib/build/in-flight.ts) and the call's time limit (lib/build/deadline.ts).
// The e2e suites (build-cache, faults) cover them through real builds; these pin the rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sharedBuild, type ShareOptions } from '../../lib/build/in-flight.ts';
import { buildDeadline, untilAborted } from '../../lib/build/deadline.ts';
import { BuildAbortedError } from '../../lib/docker/errors.ts';
import type { BuildResult } from '../../lib/build/types.ts';

const result = (digest: string): BuildResult => ({
  function: 'default/hello', image: 'r/hello:t', tag: 't', digest, reference: `r/hello@${digest}`, cached: false, pushed: true, prebuilt: false,
  timings: { resolveMs: 0, checkMs: 0, buildMs: 0, pushMs: 0, writeMs: 0, totalMs: 0 },
});

function later<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => ((resolve = yes), (reject = no)));
  return { promise, resolve, reject };
}

function share(overrides: Partial<ShareOptions> = {}): ShareOptions & { joins: number } {
  const options = { joins: 0, signal: new AbortController().signal, callerSignal: undefined, onJoin: () => options.joins++, joined: (theirs: BuildResult) => ({ ...theirs, cached: true, pushed: false }), ...overrides };
  return options;
}

test('two calls for one image at once: one build, the second joins it and gets its digest as cached', async () => {
  const first = later<BuildResult>();
  let starts = 0;
  const a = sharedBuild('push r/hello:t', () => (starts++, first.promise), share());
  const joiner = share();
  const b = sharedBuild('push r/hello:t', () => (starts++, Promise.resolve(result('sha256:other'))), joiner);
  first.resolve(result('sha256:one'));
  const [ra, rb] = await Promise.all([a, b]);
  assert.is(starts, 1);
  assert.is(joiner.joins, 1);
  assert.is(ra.digest, 'sha256:one');
  assert.equal([rb.digest, rb.cached, rb.pushed], ['sha256:one', true, false]);
  // Once it is over, the next call builds again (a failed or finished build is not kept).
  await sharedBuild('push r/hello:t', () => (starts++, Promise.resolve(result('sha256:two'))), share());
  assert.is(starts, 2);
});

test('a joiner cancelled by its own signal stops waiting; the build it joined goes on', async () => {
  const first = later<BuildResult>();
  const cancel = new AbortController();
  const a = sharedBuild('push r/cancel:t', () => first.promise, share());
  const b = sharedBuild('push r/cancel:t', () => Promise.resolve(result('sha256:never')), share({ signal: cancel.signal }));
  cancel.abort(new Error('joiner cancelled'));
  await b.then(() => assert.unreachable('the joiner kept waiting'), (error: Error) => assert.is(error.message, 'joiner cancelled'));
  first.resolve(result('sha256:one'));
  assert.is((await a).digest, 'sha256:one');
});

test('the build a joiner waited for was cancelled by its caller: the joiner builds itself; other failures are shared', async () => {
  const cancelled = later<BuildResult>();
  const a = sharedBuild('push r/retry:t', () => cancelled.promise, share());
  let starts = 0;
  const b = sharedBuild('push r/retry:t', () => (starts++, Promise.resolve(result('sha256:mine'))), share());
  cancelled.reject(new BuildAbortedError('E_BUILD_ABORTED', 'the build was cancelled by the caller'));
  await a.catch(() => {});
  assert.is((await b).digest, 'sha256:mine');
  assert.is(starts, 1);

  const failed = later<BuildResult>();
  const c = sharedBuild('push r/fail:t', () => failed.promise, share());
  const d = sharedBuild('push r/fail:t', () => Promise.resolve(result('sha256:never')), share());
  failed.reject(new Error('push refused'));
  await c.catch(() => {});
  await d.then(() => assert.unreachable('the joiner built after a real failure'), (error: Error) => assert.is(error.message, 'push refused'));
});

test('buildDeadline.typed: after the caller aborts, any error becomes E_BUILD_ABORTED; after the limit, E_BUILD_TIMEOUT; before, errors pass unchanged', async () => {
  const caller = new AbortController();
  const byCaller = buildDeadline(caller.signal, 60_000, 'build of default/hello');
  const plain = new Error('registry said no');
  await byCaller.typed(Promise.reject(plain)).then(() => assert.unreachable(), (error: unknown) => assert.is(error, plain));
  caller.abort();
  await byCaller.typed(Promise.reject(new Error('socket hang up'))).then(
    () => assert.unreachable(),
    (error: BuildAbortedError) => {
      assert.instance(error, BuildAbortedError);
      assert.is(error.code, 'E_BUILD_ABORTED');
      assert.match(error.message, 'build of default/hello');
    },
  );
  byCaller.dispose();

  const timed = buildDeadline(undefined, 40, 'build of default/slow');
  // The deadline's timers are unref'd (they never hold a process open); this one keeps the test alive.
  const keepAlive = setTimeout(() => {}, 5_000);
  await timed.typed(new Promise((_, reject) => timed.signal.addEventListener('abort', () => reject(timed.signal.reason)))).then(
    () => assert.unreachable(),
    (error: BuildAbortedError) => assert.equal([error.code, error.details.timeoutMs], ['E_BUILD_TIMEOUT', 40]),
  );
  // The cleanup may run on after the work's signal: it ends at the whole limit, not before.
  assert.not.ok(timed.cleanupSignal.aborted);
  timed.dispose();
  clearTimeout(keepAlive);
});

test('untilAborted: the work\'s result, or the signal\'s reason as soon as it fires', async () => {
  assert.is(await untilAborted(Promise.resolve(7), new AbortController().signal), 7);
  const stop = new AbortController();
  const never = new Promise<number>(() => {});
  const waiting = untilAborted(never, stop.signal);
  stop.abort(new Error('stopped'));
  await waiting.then(() => assert.unreachable(), (error: Error) => assert.is(error.message, 'stopped'));
});

test.run();
