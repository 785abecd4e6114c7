// The options and results of buildFunctionImage(), and what the pipeline hands its engines: apart
// from build.ts so that its parts (the engines, the in-flight sharing) can name them without
// importing it.
import type Dockerode from 'dockerode';
import type { DockerProgress } from '../docker/progress.ts';
import type { ArchiveLimits } from '../function/archive/limits.ts';
import type { DownloadOptions } from '../function/download.ts';
import type { RuntimeCatalog } from '../runtime/catalog.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import type { RegistrySettings } from '../registry/transport.ts';
import type { BuildEngine } from '../engine/errors.ts';
import type { ByteCounts } from '../engine/copy-blobs.ts';
import type { OutputSpec } from '../image/output-spec.ts';
import type { OutputResult } from '../engine/write-output.ts';
import type { BuildPlan } from '../image/plan.ts';
import type { Redactor } from '../redact.ts';
import type { BuildTarget } from '../target.ts';
import type { RegistryClients } from './registry-clients.ts';

export type BuildProgress = DockerProgress | { kind: 'phase'; phase: 'resolve' | 'check' | 'build' | 'push' | 'write' | 'done'; message: string };

/** A structured log event; never holds a password or token. */
export interface BuildLogEvent {
  event: string;
  level: 'debug' | 'info' | 'warn';
  [field: string]: unknown;
}

/** Where the pipeline and the engines send their log events. */
export type BuildLog = (event: BuildLogEvent) => void;

export interface BuildFunctionOptions {
  /** Target `host[/namespace]`. Without it: the host and username of the docker config's only entry. */
  registry?: string;
  /**
   * `host[/namespace]` the cluster's nodes pull from when it is not where images are pushed
   * (kubeless-config `function-registry-pull`): `reference` and `pullImage` use it, with the same
   * digest; the existence check and the push still use `registry`.
   */
  pullRegistry?: string;
  /** Runtime catalog (parsed, or the runtime-images JSON / ConfigMap data); default: the upstream Kubeless runtimes. */
  catalog?: RuntimeCatalog | string | object;
  /** A parsed docker config, or the .dockerconfigjson / .dockercfg text or object. */
  dockerConfig?: DockerConfig | string | Buffer | object;
  /** Per-registry transport settings (tlsVerify, ca, insecure), by host. */
  registries?: RegistrySettings;
  /** false: build into the local daemon only (the minikube workflow); nothing is pushed. Default true. */
  push?: boolean;
  /** A Dockerode, or the environment to reach the daemon from (DOCKER_HOST, ...). Default process.env. */
  docker?: Dockerode | Record<string, string | undefined>;
  onProgress?: (event: BuildProgress) => void;
  /** Cancels the whole call: downloads, registry requests, the daemon's ping, build and push. */
  signal?: AbortSignal;
  /** Limit for the whole call, from the start (0: none). Default 30 minutes. */
  timeoutMs?: number;
  log?: (event: BuildLogEvent) => void;
  /** Extra labels on the built image; part of its tag, as they change the image. */
  labels?: Record<string, string>;
  /** `os/architecture[/variant]` the runtime images are chosen for; part of the tag. Default linux/amd64. */
  platform?: string;
  /** Time and size limits of a url source's download. */
  download?: DownloadOptions;
  /** Entry-count and size limits of archive sources. */
  limits?: Partial<ArchiveLimits>;
  /**
   * The tag the caller expects (the scheduler's, handed to the Job): when the inputs give another one
   * (a runtime image tag moved since), the call fails with E_TAG_MISMATCH before anything is built.
   */
  expectedTag?: string;
  /** `networkmode` of the build's RUN containers (e.g. "host" for a package mirror on loopback). */
  networkMode?: string;
  /**
   * 'docker' (default): `docker build` + `docker push` on the Docker Engine. 'registry': the image is
   * appended to the runtime image through the registry API; the Docker Engine only runs an install
   * or compile step, and only when no recorded deps layer or installedDir stands in for it.
   */
  engine?: BuildEngine;
  /**
   * engine 'registry': a directory that holds /kubeless after the install (and compile) phases, as the
   * daemonless Job's init containers leave it. Its content, less the function's own source files,
   * becomes the deps layer and nothing is run.
   */
  installedDir?: string;
  /** false: never run an install or compile step; when one is needed and no deps layer is recorded, E_INSTALL_REQUIRED. Default true. */
  runInstall?: boolean;
  /**
   * engine 'registry', runtime image that is an index, function without install/compile steps: the
   * platforms to build (default: every platform the index has). With such steps only `platform` is built.
   */
  platforms?: string[];
  /**
   * Write the image to `oci:DIR` (an OCI image layout) or `docker-archive:FILE` (for `docker load`)
   * instead of pushing it: the registry engine, nothing pushed, the registry only read for the runtime
   * image. Its base layers are kept in the blob cache, so the next build on that base downloads none.
   */
  output?: string | OutputSpec;
  /** Directory of the blob cache of `output`. Default: $FUNCTION_IMAGE_BUILDER_CACHE_DIR, $XDG_CACHE_HOME/function-image-builder or ~/.cache/function-image-builder. */
  cacheDir?: string;
}

export interface BuildTimings {
  resolveMs: number;
  checkMs: number;
  buildMs: number;
  pushMs: number;
  /** With `output`: writing it (fetching missing base layers into the cache included); else 0. */
  writeMs: number;
  totalMs: number;
}

export interface BuildResult {
  /** `namespace/name` of the Function. */
  function: string;
  /** `host/ns/fn:tag` */
  image: string;
  tag: string;
  /**
   * The pushed manifest's digest. With `push: false`: the local image ID (the daemon's own
   * identifier of the image, not a registry digest).
   */
  digest: string;
  /**
   * `host/ns/fn@sha256:...`, for a Deployment: on the pull registry when one is given. With
   * `push: false`: `image` (the tag is content-addressed).
   */
  reference: string;
  /** `image` under the pull registry's name; only when a pull registry gives another name. */
  pullImage?: string;
  /** The image already existed: nothing was built. */
  cached: boolean;
  /** The image was pushed by this call. */
  pushed: boolean;
  /** The Function names its own image (containers[0].image); nothing was built or checked. */
  prebuilt: boolean;
  timings: BuildTimings;
  /** engine 'registry': bytes sent to the target, mounted there from another repository, and found there already. */
  bytes?: ByteCounts;
  /**
   * With `output`: where the image was written, the digest of its manifest there (the OCI form in a
   * layout) and of its config (the image ID after `docker load`), and the base layer bytes downloaded
   * into the cache by this call, found there already, and made by the build.
   */
  output?: { format: OutputSpec['format']; path: string; manifestDigest: string; configDigest: string; bytes: OutputResult['bytes'] };
}

/**
 * One identified build as the engines get it: the Function's plan and tag, where the image goes, and
 * the services of the call (its deadline, registry clients, the Docker Engine, logs).
 */
export interface IdentifiedBuild {
  /** `namespace/name` of the Function. */
  id: string;
  plan: BuildPlan;
  tag: string;
  /** `host/ns/fn:tag` */
  image: string;
  target: BuildTarget;
  dockerConfig: DockerConfig | undefined;
  networkMode: string | undefined;
  redact: Redactor;
  /** Cancels the work (the caller's signal or the time limit). */
  signal: AbortSignal;
  /** Ends the cleanup after the work, a little later than `signal`. */
  cleanupSignal: AbortSignal;
  clients: RegistryClients;
  /** The Docker Engine, connected on first use, and how to name it in messages. */
  docker(): Promise<{ docker: Dockerode; endpoint: string }>;
  log: BuildLog;
  progress: (event: BuildProgress) => void;
}

/** What an engine did: the image's digest, whether it was there already or pushed now, and how long it took. */
export interface EngineOutcome {
  digest: string;
  cached: boolean;
  pushed: boolean;
  buildMs: number;
  pushMs: number;
  bytes?: ByteCounts;
}
