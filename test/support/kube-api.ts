// A Kubernetes API server for tests: node:http on loopback, serving the endpoints the library calls
// (configmaps, secrets, jobs, pods, pod logs; kubeless Functions and Deployments to list, in one
// namespace or all) with real API semantics where the library depends on
// them: resourceVersions, list + watch from a resourceVersion (410 Expired when compacted), watch
// field/label selectors, AlreadyExists / NotFound / Conflict Status bodies, delete preconditions and
// background garbage collection of owned objects.
//
// It also plays the Job controller and the kubelet: for each Job it creates a Pod, runs the Pod's init
// containers one after the other and then its container on the real Docker Engine (ConfigMap and
// Secret volumes written to temp dirs, emptyDirs as world-writable temp dirs the pod's containers
// share, hostPath mounted as is, the termination message file bind-mounted, the image's or the
// securityContext's user, host network so the container reaches the rig's loopback registries); a
// failing init container fails the pod and nothing after it runs. It reports the Pod's and the Job's
// status the way Kubernetes does, including podFailurePolicy (per container), backoffLimit and
// activeDeadlineSeconds.
//
// Hooks let a test break the watch: drop every open watch, compact history (410 on the next watch from
// an old resourceVersion), or stall watches (connection open, no events); and pin the build's moment
// for it: hold pods back before they start, or let the container run (pod Running) but keep back its
// terminal status, so a test can break the watch mid-build and know the Job cannot finish meanwhile.
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { exec, TEST_LABEL } from './docker.ts';

type Obj = Record<string, any>;
type Kind = 'configmaps' | 'secrets' | 'pods' | 'jobs' | 'functions' | 'deployments';

interface WatchEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  kind: Kind;
  object: Obj;
}

interface Watcher {
  kind: Kind;
  namespace: string;
  fieldSelector: Record<string, string>;
  labelSelector: Record<string, string>;
  res: ServerResponse;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
}

export interface KubeApi {
  url: string;
  kubeConfig: KubeConfig;
  requests: RequestRecord[];
  /** Stores an object as if created through the API (seed ConfigMaps and Secrets). */
  create(kind: Kind, object: Obj): Obj;
  /** Replaces the stored object's data (a Secret or ConfigMap an operator fixes). */
  replace(kind: Kind, object: Obj): Obj;
  get(kind: Kind, namespace: string, name: string): Obj | undefined;
  list(kind: Kind, namespace?: string): Obj[];
  /** Ends every open watch connection, as an API server restart or a load balancer would. */
  dropWatches(): void;
  /** Forgets the event history: a watch from an earlier resourceVersion than the current one gets 410 Expired. */
  compact(): void;
  /**
   * The next watch request gets 410 Expired, as when history is compacted between a list and its
   * watch; so does every later watch from that resourceVersion or an earlier one.
   */
  expireNextWatch(): void;
  /** While on, watch connections stay open but receive nothing, and outlive their timeoutSeconds. */
  stallWatches(on: boolean): void;
  /** Number of watch connections currently open. */
  openWatches(): number;
  /** While on, the kubelet starts no pod: a Job stays active until released. */
  holdPods(on: boolean): void;
  /**
   * While on, pods still start and run (phase Running), but the kubelet publishes no terminal pod
   * status, hence no Job completion or failure, until released; the container's outcome is kept.
   */
  holdCompletion(on: boolean): void;
  /** Every container the kubelet ran, in order, with its `docker run` arguments. */
  runs: ContainerRun[];
  close(): Promise<void>;
}

export interface ContainerRun {
  pod: string;
  container: string;
  /** The container's name in the Docker Engine. */
  dockerName: string;
  image: string;
  /** The `docker run` arguments: mounts, user, env, entrypoint, command. */
  args: string[];
}

export interface KubeApiOptions {
  /** Delay before a failed Job's next pod (the real controller backs off 10 s and more). */
  retryDelayMs?: number;
  /** Extra `docker run` arguments for every pod. */
  dockerRunArgs?: string[];
}

const TOKEN = 'test-token-kube-api';

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function parseSelector(text: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const part of text.split(',')) {
    const [key, value] = part.split('=').filter((s) => s !== '');
    if (key !== undefined) out[key] = value ?? '';
  }
  return out;
}

function field(object: Obj, path: string): unknown {
  return path.split('.').reduce<any>((value, key) => (value === undefined || value === null ? undefined : value[key]), object);
}

function matches(object: Obj, fields: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [path, value] of Object.entries(fields)) if (String(field(object, path) ?? '') !== value) return false;
  for (const [key, value] of Object.entries(labels)) if (object.metadata?.labels?.[key] !== value) return false;
  return true;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** A gate the kubelet waits at while a test holds it. */
function gate(): { passed(): Promise<void>; hold(on: boolean): void } {
  let open: Promise<void> = Promise.resolve();
  let release: (() => void) | undefined;
  return {
    passed: () => open,
    hold(on) {
      if (on && !release) open = new Promise<void>((resolve) => (release = resolve));
      if (!on && release) {
        release();
        release = undefined;
      }
    },
  };
}

function mergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

export async function startKubeApi(options: KubeApiOptions = {}): Promise<KubeApi> {
  const retryDelayMs = options.retryDelayMs ?? 200;
  const store = new Map<string, Obj>(); // kind/namespace/name → object
  let rv = 1;
  let history: WatchEvent[] = [];
  let compactedAt = 0;
  let expireNext = false;
  const podStart = gate();
  const podCompletion = gate();
  let stalled = false;
  const watchers = new Set<Watcher>();
  const requests: RequestRecord[] = [];
  const tempDirs: string[] = [];
  const running = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const key = (kind: Kind, namespace: string, name: string) => `${kind}/${namespace}/${name}`;
  const apiVersionOf = (kind: Kind) => ({ jobs: 'batch/v1', functions: 'kubeless.io/v1beta1', deployments: 'apps/v1' } as Partial<Record<Kind, string>>)[kind] ?? 'v1';
  const kindName = (kind: Kind) => ({ configmaps: 'ConfigMap', secrets: 'Secret', pods: 'Pod', jobs: 'Job', functions: 'Function', deployments: 'Deployment' })[kind];

  function emit(type: WatchEvent['type'], kind: Kind, object: Obj): void {
    const event: WatchEvent = { rv: Number(object.metadata.resourceVersion), type, kind, object: clone(object) };
    history.push(event);
    if (stalled) return;
    for (const watcher of watchers) send(watcher, event);
  }

  function send(watcher: Watcher, event: WatchEvent): void {
    if (event.kind !== watcher.kind) return;
    if (watcher.namespace !== '' && event.object.metadata.namespace !== watcher.namespace) return;
    if (!matches(event.object, watcher.fieldSelector, watcher.labelSelector)) return;
    watcher.res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  function put(kind: Kind, object: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    object.metadata.resourceVersion = String(++rv);
    store.set(key(kind, object.metadata.namespace, object.metadata.name), object);
    emit(type, kind, object);
    return object;
  }

  function createObject(kind: Kind, namespace: string, body: Obj): Obj {
    const name = body.metadata?.name ?? (body.metadata?.generateName ? `${body.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}` : undefined);
    if (!name) throw { code: 422, body: status(422, 'Invalid', `${kindName(kind)} "": metadata.name: Required value`) };
    if (store.has(key(kind, namespace, name))) {
      throw { code: 409, body: status(409, 'AlreadyExists', `${kind}.${kind === 'jobs' ? 'batch ' : ''}"${name}" already exists`) };
    }
    const object: Obj = clone(body);
    object.apiVersion = apiVersionOf(kind);
    object.kind = kindName(kind);
    object.metadata = { ...object.metadata, name, namespace, uid: randomUUID(), creationTimestamp: new Date().toISOString(), generation: 1 };
    if (kind === 'secrets') foldStringData(object);
    if (kind === 'jobs') object.status = {};
    put(kind, object, 'ADDED');
    if (kind === 'jobs') startJob(object);
    return object;
  }

  function deleteObject(kind: Kind, namespace: string, name: string, body: Obj | undefined, propagation: string | undefined): Obj {
    const existing = store.get(key(kind, namespace, name));
    if (!existing) throw { code: 404, body: status(404, 'NotFound', `${kind} "${name}" not found`) };
    const uid = body?.preconditions?.uid;
    if (uid !== undefined && uid !== existing.metadata.uid) {
      throw {
        code: 409,
        body: status(409, 'Conflict', `Operation cannot be fulfilled on ${kind} "${name}": Precondition failed: UID in precondition: ${uid}, UID in object meta: ${existing.metadata.uid}`),
      };
    }
    store.delete(key(kind, namespace, name));
    existing.metadata.resourceVersion = String(++rv);
    existing.metadata.deletionTimestamp = new Date().toISOString();
    emit('DELETED', kind, existing);
    const policy = propagation ?? body?.propagationPolicy ?? (kind === 'jobs' ? 'Orphan' : 'Background');
    if (policy !== 'Orphan') later(() => collectGarbage(existing.metadata.uid), 30);
    if (kind === 'pods') killPod(existing);
    return existing;
  }

  // Objects whose every owner is gone are deleted, as the garbage collector does.
  function collectGarbage(ownerUid: string): void {
    const uids = new Set([...store.values()].map((o) => o.metadata.uid));
    for (const [k, object] of [...store.entries()]) {
      const owners: Obj[] = object.metadata.ownerReferences ?? [];
      if (owners.length === 0 || !owners.some((o) => o.uid === ownerUid)) continue;
      if (owners.some((o) => uids.has(o.uid))) continue;
      const [kind, namespace, name] = k.split('/') as [Kind, string, string];
      deleteObject(kind, namespace, name, undefined, 'Background');
    }
  }

  function later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  }

  // ---- Job controller ----

  function currentJob(job: Obj): Obj | undefined {
    const now = store.get(key('jobs', job.metadata.namespace, job.metadata.name));
    return now && now.metadata.uid === job.metadata.uid ? now : undefined;
  }

  function updateJobStatus(job: Obj, patch: Obj): void {
    const now = currentJob(job);
    if (!now) return;
    now.status = { ...now.status, ...patch };
    put('jobs', now, 'MODIFIED');
  }

  function finishJob(job: Obj, type: 'Complete' | 'Failed', reason?: string, message?: string): void {
    const now = currentJob(job);
    if (!now) return;
    const time = new Date().toISOString();
    const conditions: Obj[] = [];
    if (type === 'Failed') conditions.push({ type: 'FailureTarget', status: 'True', reason, message, lastProbeTime: time, lastTransitionTime: time });
    else conditions.push({ type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', lastProbeTime: time, lastTransitionTime: time });
    conditions.push({ type, status: 'True', ...(reason ? { reason } : {}), ...(message ? { message } : {}), lastProbeTime: time, lastTransitionTime: time });
    updateJobStatus(job, { active: 0, conditions, ...(type === 'Complete' ? { completionTime: time } : {}) });
  }

  function startJob(job: Obj): void {
    const state = { failed: 0, finished: false };
    updateJobStatus(job, { startTime: new Date().toISOString(), active: 0 });
    const deadline = job.spec?.activeDeadlineSeconds;
    if (typeof deadline === 'number') {
      later(() => {
        if (state.finished || !currentJob(job)) return;
        state.finished = true;
        for (const pod of podsOf(job)) killPod(pod);
        finishJob(job, 'Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline');
      }, deadline * 1000);
    }
    const runNext = (): void => {
      if (state.finished || closed || !currentJob(job)) return;
      const task = podStart.passed().then(() => runPod(job)).then(({ pod, exitCode, container }) => {
        if (state.finished || !currentJob(job)) return;
        if (exitCode === 0) {
          state.finished = true;
          updateJobStatus(job, { succeeded: 1, ready: 0 });
          finishJob(job, 'Complete');
          return;
        }
        state.failed += 1;
        updateJobStatus(job, { failed: state.failed, ready: 0 });
        const rule = matchingFailJobRule(job, container, exitCode);
        if (rule !== undefined) {
          state.finished = true;
          finishJob(
            job,
            'Failed',
            'PodFailurePolicy',
            `Container ${container} for pod ${pod.metadata.namespace}/${pod.metadata.name} failed with exit code ${exitCode} matching FailJob rule at index ${rule}`,
          );
          return;
        }
        if (state.failed > (job.spec?.backoffLimit ?? 6)) {
          state.finished = true;
          finishJob(job, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
          return;
        }
        later(runNext, retryDelayMs);
      });
      running.add(task);
      void task.finally(() => running.delete(task));
    };
    later(runNext, 20);
  }

  /** The FailJob rule that the failed container's exit code matches (rules without a container name match any). */
  function matchingFailJobRule(job: Obj, containerName: string, exitCode: number): number | undefined {
    const rules: Obj[] = job.spec?.podFailurePolicy?.rules ?? [];
    for (const [index, rule] of rules.entries()) {
      const codes = rule.onExitCodes;
      if (!codes) continue;
      if (codes.containerName && codes.containerName !== containerName) continue;
      const hit = codes.operator === 'In' ? codes.values.includes(exitCode) : !codes.values.includes(exitCode);
      if (hit) return rule.action === 'FailJob' ? index : undefined;
    }
    return undefined;
  }

  function podsOf(job: Obj): Obj[] {
    return [...store.values()].filter((o) => o.kind === 'Pod' && o.metadata.labels?.['controller-uid'] === job.metadata.uid);
  }

  // ---- kubelet ----

  const podContainers = new Map<string, string>(); // pod uid → docker container name
  const podLogs = new Map<string, string>(); // kind/ns/name of pod/container → log text
  const runs: ContainerRun[] = [];

  function killPod(pod: Obj): void {
    const name = podContainers.get(pod.metadata.uid);
    if (name) void exec('docker', ['kill', name]);
  }

  async function waitForVolumeSource(kind: Kind, namespace: string, name: string): Promise<Obj> {
    // The kubelet retries mounts until the ConfigMap or Secret exists.
    for (let i = 0; i < 300 && !closed; i++) {
      const object = store.get(key(kind, namespace, name));
      if (object) return object;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${kind} ${namespace}/${name} never appeared`);
  }

  /** Each volume of the pod as a host path: ConfigMap and Secret keys written out, emptyDirs made world-writable as Kubernetes makes them. */
  async function podVolumes(spec: Obj, namespace: string, dir: string): Promise<Map<string, string>> {
    const volumes = new Map<string, string>();
    for (const volume of spec.volumes ?? []) {
      if (volume.hostPath) {
        volumes.set(volume.name, volume.hostPath.path);
      } else if (volume.emptyDir) {
        const path = join(dir, `empty-${volume.name}`);
        mkdirSync(path);
        chmodSync(path, 0o777);
        volumes.set(volume.name, path);
      } else if (volume.configMap || volume.secret) {
        const kind: Kind = volume.configMap ? 'configmaps' : 'secrets';
        const source = await waitForVolumeSource(kind, namespace, volume.configMap?.name ?? volume.secret.secretName);
        const path = join(dir, `volume-${volume.name}`);
        mkdirSync(path);
        for (const [file, value] of Object.entries<string>(source.data ?? {})) {
          writeFileSync(join(path, file), kind === 'secrets' ? Buffer.from(value, 'base64') : value);
          chmodSync(join(path, file), (volume.configMap ?? volume.secret).defaultMode ?? 0o644);
        }
        volumes.set(volume.name, path);
      } else {
        throw new Error(`volume ${volume.name}: only configMap, secret, hostPath and emptyDir are supported here`);
      }
    }
    return volumes;
  }

  /** Publishes the pod's status, when the pod is still there. */
  function setPodStatus(namespace: string, podName: string, status: Obj): void {
    const now = store.get(key('pods', namespace, podName));
    if (!now) return;
    now.status = status;
    put('pods', now, 'MODIFIED');
  }

  function containerStatus(container: Obj, state: Obj, ready = false): Obj {
    return { name: container.name, ready, restartCount: 0, image: container.image, imageID: '', state };
  }

  interface ContainerOutcome {
    exitCode: number;
    message: string;
    startedAt: string;
    finishedAt: string;
  }

  /**
   * Runs one of the pod's containers to its end, as the kubelet does: the pod's volumes, the
   * termination message file, env, command/args, working dir and user; `report` publishes its
   * waiting and running states.
   */
  async function runContainer(pod: Obj, container: Obj, volumes: Map<string, string>, dir: string, report: (state: Obj) => void): Promise<ContainerOutcome> {
    const namespace = pod.metadata.namespace;
    const podName = pod.metadata.name;
    const dockerName = `fib-kubelet-${podName}-${container.name}-${randomBytes(3).toString('hex')}`;
    const args = ['run', '--name', dockerName, '--label', `${TEST_LABEL}=kube-api`, '--network', 'host', ...(options.dockerRunArgs ?? [])];
    const security = { ...pod.spec.securityContext, ...container.securityContext };
    if (security.runAsUser !== undefined) args.push('--user', `${security.runAsUser}${security.runAsGroup !== undefined ? `:${security.runAsGroup}` : ''}`);
    if (pod.spec.securityContext?.fsGroup !== undefined) args.push('--group-add', String(pod.spec.securityContext.fsGroup));
    for (const mount of container.volumeMounts ?? []) {
      const source = volumes.get(mount.name);
      if (!source) throw new Error(`volumeMount ${mount.name} has no volume`);
      args.push('-v', `${source}:${mount.mountPath}${mount.readOnly ? ':ro' : ''}`);
    }
    const terminationPath = join(dir, `termination-log-${container.name}`);
    writeFileSync(terminationPath, '');
    chmodSync(terminationPath, 0o666);
    args.push('-v', `${terminationPath}:${container.terminationMessagePath ?? '/dev/termination-log'}`);
    for (const env of container.env ?? []) args.push('-e', `${env.name}=${env.value ?? ''}`);
    if (container.workingDir) args.push('-w', container.workingDir);
    if (container.command) args.push('--entrypoint', container.command[0]);
    args.push(container.image, ...(container.command ? container.command.slice(1) : []), ...(container.args ?? []));

    // Nothing is pulled here: an image the Engine lacks is what a kubelet reports as ImagePullBackOff,
    // and the pod never starts (the Job stays active until its deadline).
    if ((await exec('docker', ['image', 'inspect', container.image])).code !== 0) {
      report({ waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${container.image}"` } });
      // Until the deadline kills the Job, the pod is deleted, or the server closes.
      while (!closed && store.has(key('pods', namespace, podName))) await new Promise((r) => setTimeout(r, 100));
      throw new Error(`image ${container.image} was never pulled`);
    }
    const startedAt = new Date().toISOString();
    report({ running: { startedAt } });
    podContainers.set(pod.metadata.uid, dockerName);
    runs.push({ pod: podName, container: container.name, dockerName, image: container.image, args });
    try {
      const result = await exec('docker', args, { timeoutMs: 600_000 });
      const logs = result.stdout + result.stderr;
      podLogs.set(`${key('pods', namespace, podName)}/${container.name}`, logs);
      let message = readFileSync(terminationPath, 'utf8');
      if (message === '' && result.code !== 0 && container.terminationMessagePolicy === 'FallbackToLogsOnError') {
        // The kubelet keeps the last 80 lines, at most 2048 bytes.
        message = logs.split('\n').slice(-81).join('\n');
        if (Buffer.byteLength(message) > 2048) message = Buffer.from(message).subarray(-2048).toString();
      }
      return { exitCode: result.code, message: Buffer.from(message).subarray(0, 4096).toString(), startedAt, finishedAt: new Date().toISOString() };
    } finally {
      podContainers.delete(pod.metadata.uid);
      await exec('docker', ['rm', '-f', dockerName]);
    }
  }

  /**
   * The pod of a Job attempt: its init containers one after the other, each to success, then its
   * container; the first one that fails fails the pod and nothing after it runs.
   */
  async function runPod(job: Obj): Promise<{ pod: Obj; exitCode: number; container: string }> {
    const template = job.spec.template;
    const namespace = job.metadata.namespace;
    const podName = `${job.metadata.name}-${randomBytes(4).toString('hex').slice(0, 5)}`;
    const labels = {
      ...template.metadata?.labels,
      'controller-uid': job.metadata.uid,
      'batch.kubernetes.io/controller-uid': job.metadata.uid,
      'job-name': job.metadata.name,
      'batch.kubernetes.io/job-name': job.metadata.name,
    };
    const pod = createObject('pods', namespace, {
      metadata: {
        name: podName,
        labels,
        annotations: template.metadata?.annotations ?? {},
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: clone(template.spec),
      status: { phase: 'Pending' },
    });
    updateJobStatus(job, { active: 1 });
    const main = template.spec.containers[0];
    const inits: Obj[] = template.spec.initContainers ?? [];
    const dir = mkdtempSync(join(tmpdir(), 'fib-kubelet-'));
    tempDirs.push(dir);
    const initStatuses: Obj[] = [];
    const withInits = () => (inits.length > 0 ? { initContainerStatuses: clone(initStatuses) } : {});
    const terminated = (outcome: ContainerOutcome) => ({
      terminated: { exitCode: outcome.exitCode, reason: outcome.exitCode === 0 ? 'Completed' : 'Error', message: outcome.message, startedAt: outcome.startedAt, finishedAt: outcome.finishedAt },
    });
    let current: Obj = inits[0] ?? main;
    let outcome: ContainerOutcome = { exitCode: 0, message: '', startedAt: '', finishedAt: '' };
    try {
      const volumes = await podVolumes(template.spec, namespace, dir);
      for (const init of inits) {
        current = init;
        const waitingMain = [containerStatus(main, { waiting: { reason: 'PodInitializing' } })];
        outcome = await runContainer(pod, init, volumes, dir, (state) =>
          setPodStatus(namespace, podName, { phase: 'Pending', initContainerStatuses: [...clone(initStatuses), containerStatus(init, state)], containerStatuses: waitingMain }),
        );
        initStatuses.push(containerStatus(init, terminated(outcome)));
        if (outcome.exitCode !== 0) break;
      }
      if (outcome.exitCode === 0) {
        current = main;
        outcome = await runContainer(pod, main, volumes, dir, (state) =>
          setPodStatus(namespace, podName, { phase: state.running ? 'Running' : 'Pending', ...(state.running ? { startTime: state.running.startedAt } : {}), ...withInits(), containerStatuses: [containerStatus(main, state, state.running !== undefined)] }),
        );
      }
    } catch (error) {
      const now = new Date().toISOString();
      const logKey = `${key('pods', namespace, podName)}/${current.name}`;
      podLogs.set(logKey, `${podLogs.get(logKey) ?? ''}\nkubelet: ${(error as Error).message}`);
      outcome = { exitCode: 128, message: (error as Error).message, startedAt: now, finishedAt: now };
      if (current !== main) initStatuses.push(containerStatus(current, terminated(outcome)));
    }
    await podCompletion.passed();
    const mainState = current === main ? terminated(outcome) : { waiting: { reason: 'PodInitializing' } };
    const startTime = store.get(key('pods', namespace, podName))?.status?.startTime;
    setPodStatus(namespace, podName, {
      phase: outcome.exitCode === 0 ? 'Succeeded' : 'Failed',
      ...(startTime ? { startTime } : {}),
      ...withInits(),
      containerStatuses: [containerStatus(main, mainState)],
    });
    return { pod, exitCode: outcome.exitCode, container: current.name };
  }

  // ---- HTTP ----

  function respond(res: ServerResponse, code: number, body: unknown): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' });
    res.end(text);
  }

  async function readBody(req: IncomingMessage): Promise<Obj | undefined> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    return text === '' ? undefined : JSON.parse(text);
  }

  function route(path: string): { kind: Kind; namespace: string; name?: string; sub?: string } | undefined {
    const core = /^\/api\/v1\/namespaces\/([^/]+)\/(configmaps|secrets|pods)(?:\/([^/]+))?(?:\/(log))?$/.exec(path);
    if (core) return { kind: core[2] as Kind, namespace: core[1]!, name: core[3], sub: core[4] };
    const batch = /^\/apis\/batch\/v1\/namespaces\/([^/]+)\/(jobs)(?:\/([^/]+))?$/.exec(path);
    if (batch) return { kind: 'jobs', namespace: batch[1]!, name: batch[3] };
    // Namespaced or, without /namespaces/<ns>, across all namespaces (namespace '').
    const listed = /^\/apis\/(?:kubeless\.io\/v1beta1\/(?:namespaces\/([^/]+)\/)?(functions)|apps\/v1\/(?:namespaces\/([^/]+)\/)?(deployments))(?:\/([^/]+))?$/.exec(path);
    if (listed) return { kind: (listed[2] ?? listed[4]) as Kind, namespace: listed[1] ?? listed[3] ?? '', name: listed[5] };
    return undefined;
  }

  function startWatch(req: IncomingMessage, res: ServerResponse, kind: Kind, namespace: string, query: URLSearchParams): void {
    const from = Number(query.get('resourceVersion') ?? '0');
    const watcher: Watcher = {
      kind,
      namespace,
      fieldSelector: parseSelector(query.get('fieldSelector')),
      labelSelector: parseSelector(query.get('labelSelector')),
      res,
    };
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (expireNext) {
      // Compacted past this watch's resourceVersion: it stays too old, so only a fresh list helps.
      // Other writes in the cluster moved the resourceVersion on, so that list gets a watchable one.
      expireNext = false;
      rv = Math.max(rv, from + 1);
      compactedAt = Math.max(compactedAt, from + 1);
    }
    if (from > 0 && from < compactedAt) {
      // What a real API server sends for a compacted resourceVersion: 200, one ERROR event, close.
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${compactedAt})`) })}\n`);
      return;
    }
    if (!stalled) {
      if (from > 0) {
        for (const event of history) if (event.rv > from) send(watcher, event);
      } else {
        for (const object of store.values()) {
          if (object.kind === kindName(kind)) send(watcher, { rv: 0, type: 'ADDED', kind, object });
        }
      }
    }
    watchers.add(watcher);
    const timeout = Number(query.get('timeoutSeconds') ?? '0');
    // A stalled connection (a hung proxy, a wedged API server) does not close at its timeout either.
    const timer = timeout > 0 ? setTimeout(() => stalled || res.end(), timeout * 1000) : undefined;
    const forget = () => {
      if (timer) clearTimeout(timer);
      watchers.delete(watcher);
    };
    req.on('close', forget);
    res.on('close', forget);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.search });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return respond(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const target = route(url.pathname);
    if (!target) return respond(res, 404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
    const { kind, namespace, name, sub } = target;
    const method = req.method ?? 'GET';
    try {
      if (method === 'GET' && name === undefined) {
        if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') return startWatch(req, res, kind, namespace, url.searchParams);
        const fields = parseSelector(url.searchParams.get('fieldSelector'));
        const labels = parseSelector(url.searchParams.get('labelSelector'));
        const items = [...store.values()].filter((o) => o.kind === kindName(kind) && (namespace === '' || o.metadata.namespace === namespace) && matches(o, fields, labels));
        return respond(res, 200, { apiVersion: apiVersionOf(kind), kind: `${kindName(kind)}List`, metadata: { resourceVersion: String(rv) }, items });
      }
      if (method === 'GET' && sub === 'log') {
        const pod = store.get(key('pods', namespace, name!));
        if (!pod) throw { code: 404, body: status(404, 'NotFound', `pods "${name}" not found`) };
        // Without ?container=, the pod's (only) container, as kubectl logs does.
        const container = url.searchParams.get('container') ?? pod.spec.containers[0].name;
        let text = podLogs.get(`${key('pods', namespace, name!)}/${container}`) ?? '';
        const tail = url.searchParams.get('tailLines');
        if (tail !== null) text = text.replace(/\n$/, '').split('\n').slice(-Number(tail)).join('\n') + '\n';
        return respond(res, 200, text);
      }
      if (method === 'GET') {
        const object = store.get(key(kind, namespace, name!));
        if (!object) throw { code: 404, body: status(404, 'NotFound', `${kind} "${name}" not found`) };
        return respond(res, 200, object);
      }
      if (method === 'POST' && name === undefined) {
        const body = await readBody(req);
        return respond(res, 201, createObject(kind, namespace, body ?? {}));
      }
      if (method === 'PUT' && name !== undefined) {
        const body = (await readBody(req)) ?? {};
        const existing = store.get(key(kind, namespace, name));
        if (!existing) throw { code: 404, body: status(404, 'NotFound', `${kind} "${name}" not found`) };
        const expected = body.metadata?.resourceVersion;
        if (expected !== undefined && expected !== existing.metadata.resourceVersion) {
          throw { code: 409, body: status(409, 'Conflict', `Operation cannot be fulfilled on ${kind} "${name}": the object has been modified; please apply your changes to the latest version and try again`) };
        }
        const next: Obj = { ...clone(body), apiVersion: apiVersionOf(kind), kind: kindName(kind) };
        next.metadata = { ...next.metadata, name, namespace, uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp };
        if (kind === 'jobs') next.status = existing.status;
        if (kind === 'secrets') foldStringData(next);
        return respond(res, 200, put(kind, next, 'MODIFIED'));
      }
      if (method === 'PATCH' && name !== undefined) {
        const body = await readBody(req);
        const existing = store.get(key(kind, namespace, name));
        if (!existing) throw { code: 404, body: status(404, 'NotFound', `${kind} "${name}" not found`) };
        if (Array.isArray(body)) throw { code: 415, body: status(415, 'UnsupportedMediaType', 'only merge patches are served here') };
        const next = mergePatch(existing, body);
        next.metadata = { ...next.metadata, name, namespace, uid: existing.metadata.uid };
        return respond(res, 200, put(kind, next, 'MODIFIED'));
      }
      if (method === 'DELETE' && name !== undefined) {
        const body = await readBody(req);
        const deleted = deleteObject(kind, namespace, name, body, url.searchParams.get('propagationPolicy') ?? undefined);
        return respond(res, 200, kind === 'jobs' || kind === 'pods' ? deleted : { kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name, kind } });
      }
      return respond(res, 405, status(405, 'MethodNotAllowed', `${method} ${url.pathname} is not served here`));
    } catch (error) {
      const e = error as { code?: number; body?: Obj };
      if (typeof e.code === 'number' && e.body) return respond(res, e.code, e.body);
      return respond(res, 500, status(500, 'InternalError', (error as Error).message));
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) respond(res, 500, status(500, 'InternalError', String(error)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('kube-api: no address');
  const url = `http://127.0.0.1:${address.port}`;

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'test', server: url, skipTLSVerify: true }],
    users: [{ name: 'test', token: TOKEN }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test', namespace: 'default' }],
    currentContext: 'test',
  });

  return {
    url,
    kubeConfig,
    requests,
    runs,
    create(kind, object) {
      return createObject(kind, object.metadata?.namespace ?? 'default', object);
    },
    replace(kind, object) {
      const namespace = object.metadata?.namespace ?? 'default';
      const existing = store.get(key(kind, namespace, object.metadata.name));
      if (!existing) throw new Error(`${kind} ${namespace}/${object.metadata.name} does not exist`);
      const next: Obj = { ...clone(existing), ...clone(object), metadata: existing.metadata };
      if (kind === 'secrets' && object.stringData) {
        next.data = {};
        foldStringData(next);
      }
      return clone(put(kind, next, 'MODIFIED'));
    },
    get(kind, namespace, name) {
      const object = store.get(key(kind, namespace, name));
      return object ? clone(object) : undefined;
    },
    list(kind, namespace) {
      return [...store.values()].filter((o) => o.kind === kindName(kind) && (namespace === undefined || o.metadata.namespace === namespace)).map(clone);
    },
    dropWatches() {
      for (const watcher of [...watchers]) {
        watchers.delete(watcher);
        watcher.res.destroy();
      }
    },
    compact() {
      compactedAt = rv;
      history = [];
    },
    expireNextWatch() {
      expireNext = true;
    },
    stallWatches(on) {
      stalled = on;
    },
    holdPods: podStart.hold,
    holdCompletion: podCompletion.hold,
    openWatches() {
      return watchers.size;
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      // Held pods would keep `running` from settling.
      podStart.hold(false);
      podCompletion.hold(false);
      for (const name of podContainers.values()) await exec('docker', ['rm', '-f', name]);
      await Promise.allSettled([...running]);
      for (const watcher of watchers) watcher.res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
      // Every container this server started was removed after it exited; make sure of strays.
      for (const run of runs) await exec('docker', ['rm', '-f', run.dockerName]);
    },
  };
}

/** The containers the test kubelet ran for a Job's pods, in order. */
export function runsOf(api: KubeApi, job: string): ContainerRun[] {
  return api.runs.filter((run) => run.pod.startsWith(`${job}-`));
}

/** What the API server does with a written Secret: stringData goes into data (base64) over what data held, and is not stored. */
function foldStringData(secret: Record<string, any>): void {
  if (!secret.stringData) return;
  secret.data = { ...secret.data };
  for (const [k, v] of Object.entries(secret.stringData as Record<string, string>)) secret.data[k] = Buffer.from(v).toString('base64');
  delete secret.stringData;
}
