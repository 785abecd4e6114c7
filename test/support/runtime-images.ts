// Offline Kubeless runtime images for the tests. Nothing can be pulled from a public registry here,
// so the images are assembled from local files — the Node binary of the pinned `node` package, npm
// from the `npm` devDependency, Debian's python3.11 and pip, busybox-static, the shared libraries
// `ldd` names, and the runtime servers and install commands under fixtures/runtimes/ — and built
// FROM scratch with the docker CLI (classic builder, context tar streamed on stdin).
//
// Local cache: each image is tagged fib-runtime/<image>:<hash of every input>, so a second call in
// this process, or a test process that overlaps this one, finds it and builds nothing. The images
// carry TEST_LABEL=runtime-image, so they count as leftovers of the run that built them: at the end of
// a run test/e2e/leftovers.test.ts removes them all (removeRuntimeImages()) before it checks, unless
// another test run on the machine may still be using them. Tags of superseded inputs are pruned on
// rebuild.
//
// Registry copies: runtimeCatalogFor(registry) pushes the images to <host>/kubeless/<image>:<version>
// once per registry and returns a Kubeless `runtime-images` catalog that pins each by digest. The
// local <host>/... tags are removed right after the push (the digests stay valid in the registry);
// releaseRuntimeImages(registry) removes any <host>/kubeless/... reference a test pulled meanwhile.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { docker, exec, TEST_LABEL } from './docker.ts';
import { dockerClientConfig, type RegistryHandle } from './registry.ts';

export type RuntimeName = 'nodejs' | 'python';
export type RuntimeImageName = 'nodejs' | 'nodejs-install' | 'python' | 'python-install';

/** Local repository of the cached images: fib-runtime/<image>:<input hash>. */
export const RUNTIME_IMAGE_REPOSITORY = 'fib-runtime';
/** Label naming which runtime image an image is (besides TEST_LABEL=runtime-image). */
export const RUNTIME_IMAGE_LABEL = 'io.function-image-builder.runtime-image';
export const RUNTIME_IMAGE_LABEL_VALUE = 'runtime-image';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'fixtures');
const NODE_BINARY = process.env.RUNTIME_NODE_BINARY ?? join(ROOT, 'node_modules', 'node', 'bin', 'node');
const NPM_DIR = join(ROOT, 'node_modules', 'npm');
const BUSYBOX = process.env.BUSYBOX_BINARY ?? '/bin/busybox';
/** Debian's python, not whatever `python3` is first on PATH (pyenv and the like). */
const PYTHON = process.env.RUNTIME_PYTHON_BINARY ?? '/usr/bin/python3.11';
const PYTHON_STDLIB = '/usr/lib/python3.11';
const DEBIAN_DIST_PACKAGES = '/usr/lib/python3/dist-packages';
const STRIP = process.env.STRIP_BINARY ?? 'strip';
/** Bumped when the way contexts are assembled changes, so old cached images are not reused. */
const RECIPE_FORMAT = 'runtime-images/1';
/** Mtime of generated files: fixed, so their tar entries (and the image layers) do not vary. */
const GENERATED_MTIME = new Date('2024-01-01T00:00:00Z');
/** Cached images of superseded inputs older than this are pruned when a new one is built. */
const PRUNE_AFTER_MS = 10 * 60_000;

/** What the catalog says about each runtime: Kubeless's `runtime-images` fields. */
export const RUNTIME_DEFINITIONS = {
  nodejs: {
    ID: 'nodejs',
    depName: 'package.json',
    fileNameSuffix: '.js',
    versionName: 'node24',
    version: '24',
    installCommand: '/kubeless-npm-install.sh',
    runtimeEnv: { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' },
  },
  python: {
    ID: 'python',
    depName: 'requirements.txt',
    fileNameSuffix: '.py',
    versionName: 'python311',
    version: '3.11',
    installCommand: 'pip install --prefix=$KUBELESS_INSTALL_VOLUME -r $KUBELESS_DEPS_FILE',
    // Debian's python3.11 selects its `posix_local` scheme for --prefix installs: packages land in
    // <prefix>/local/lib/python3.11/dist-packages, not lib/python3.11/site-packages as upstream.
    runtimeEnv: { PYTHONPATH: '$(KUBELESS_INSTALL_VOLUME)/local/lib/python3.11/dist-packages:$(KUBELESS_INSTALL_VOLUME)' },
  },
} as const;

/** The Function `spec.runtime` value of each runtime, e.g. nodejs24. */
export const FUNCTION_RUNTIMES: Record<RuntimeName, string> = {
  nodejs: `${RUNTIME_DEFINITIONS.nodejs.ID}${RUNTIME_DEFINITIONS.nodejs.version}`,
  python: `${RUNTIME_DEFINITIONS.python.ID}${RUNTIME_DEFINITIONS.python.version}`,
};

/** The runtime env of each runtime, expanded for KUBELESS_INSTALL_VOLUME=/kubeless. */
export function runtimeEnv(runtime: RuntimeName, installVolume = '/kubeless'): Record<string, string> {
  return Object.fromEntries(
    Object.entries(RUNTIME_DEFINITIONS[runtime].runtimeEnv).map(([k, v]) => [k, v.replaceAll('$(KUBELESS_INSTALL_VOLUME)', installVolume)]),
  );
}

// ---------------------------------------------------------------------------------------------
// Recipes: which local files go where in each image.

interface ContextEntry {
  /** Path inside the build context, e.g. rootfs/usr/local/bin/node. */
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  /** Host file to copy (files). */
  source?: string;
  /** Generated content (files). */
  content?: Buffer;
  /** Target (symlinks). */
  linkname?: string;
  /** Strip the ELF file's symbols when it goes into the image (measured: the Node binary shrinks
   *  from 129 MB to 112 MB, 46 MB to 41 MB gzipped, for 0.7 s of `strip`). */
  strip?: boolean;
  mtime?: Date;
}

interface Recipe {
  name: RuntimeImageName;
  base?: RuntimeImageName;
  dockerfile: string;
  entries: () => Promise<ContextEntry[]>;
}

function file(name: string, source: string, mode?: number): ContextEntry {
  const stat = statSync(source);
  return { name, type: 'file', source, mode: mode ?? stat.mode & 0o7777, mtime: stat.mtime };
}

function generated(name: string, content: string | Buffer, mode = 0o644): ContextEntry {
  return { name, type: 'file', content: Buffer.from(content), mode, mtime: GENERATED_MTIME };
}

function directory(name: string, mode = 0o755): ContextEntry {
  return { name, type: 'directory', mode, mtime: GENERATED_MTIME };
}

function symlink(name: string, linkname: string): ContextEntry {
  return { name, type: 'symlink', linkname, mode: 0o777, mtime: GENERATED_MTIME };
}

/** Copies a host directory tree to `target` in the context; `skip` sees paths relative to `source`. */
function tree(target: string, source: string, skip: (relativePath: string, isDirectory: boolean) => boolean): ContextEntry[] {
  const found: ContextEntry[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(source, path);
      const name = posix.join(target, rel);
      if (entry.isSymbolicLink()) {
        const linkname = readlinkSync(path);
        if (skip(rel, false)) continue;
        // A link that leaves the tree (Debian points some files into /etc) would dangle in the image.
        const inside = !posix.isAbsolute(linkname) && !posix.normalize(posix.join(posix.dirname(rel), linkname)).startsWith('..');
        if (inside) found.push(symlink(name, linkname));
        continue;
      }
      if (entry.isDirectory()) {
        if (skip(rel, true)) continue;
        found.push({ ...directory(name, statSync(path).mode & 0o7777), mtime: statSync(path).mtime });
        walk(path);
      } else if (entry.isFile() && !skip(rel, false)) {
        found.push(file(name, path));
      }
    }
  };
  walk(source);
  return found;
}

/** Shared libraries (and the dynamic loader) the given ELF files need, at the paths ldd reports. */
async function sharedLibraries(binaries: string[]): Promise<ContextEntry[]> {
  const result = await exec('ldd', binaries);
  if (result.code !== 0) throw new Error(`ldd ${binaries.join(' ')} failed: ${result.stderr || result.stdout}`);
  const missing = result.stdout.split('\n').filter((line) => line.includes('not found'));
  if (missing.length > 0) throw new Error(`shared libraries not found on this machine:\n${missing.join('\n')}`);
  const paths = new Set<string>();
  for (const line of result.stdout.split('\n')) {
    const linked = /=>\s+(\/\S+)\s+\(/.exec(line);
    const loader = /^\s+(\/\S+)\s+\(/.exec(line);
    const path = linked?.[1] ?? loader?.[1];
    if (path) paths.add(path);
  }
  // The file's content at the path the binaries ask for (a symlink on the host becomes a file).
  return [...paths].sort().map((path) => {
    const entry = file(`rootfs${path}`, path);
    return { ...entry, mode: statSync(path).mode & 0o777 };
  });
}

/** busybox-static as /bin/busybox, every applet (sh, env, cp, mktemp, ...) a symlink to it. */
async function busybox(): Promise<ContextEntry[]> {
  const list = await exec(BUSYBOX, ['--list-full']);
  if (list.code !== 0) throw new Error(`${BUSYBOX} --list-full failed: ${list.stderr}`);
  const applets = list.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && line !== 'bin/busybox' && line !== 'linuxrc');
  return [file('rootfs/bin/busybox', BUSYBOX, 0o755), ...applets.map((applet) => symlink(`rootfs/${applet}`, '/bin/busybox'))];
}

/** What every runtime image holds besides its language: users, /tmp, the dirs user 1000 owns. */
function baseSystem(): ContextEntry[] {
  return [
    file('rootfs/etc/passwd', join(FIXTURES, 'runtimes', 'base', 'passwd'), 0o644),
    file('rootfs/etc/group', join(FIXTURES, 'runtimes', 'base', 'group'), 0o644),
    directory('rootfs/tmp', 0o1777),
    directory('owned/kubeless'),
    directory('owned/home'),
  ];
}

/** An npm package tarball (entries under package/) of a fixture package directory. */
async function npmTarball(source: string): Promise<{ fileName: string; content: Buffer }> {
  const manifest = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as { name: string; version: string };
  const pack = tar.pack();
  for (const name of readdirSync(source).sort()) {
    pack.entry({ name: `package/${name}`, mode: 0o644, mtime: GENERATED_MTIME }, readFileSync(join(source, name)));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  const fileName = `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`;
  return { fileName, content: gzipSync(Buffer.concat(chunks), { level: 9 }) };
}

/** Wheels of the fixture python packages, made by fixtures/packages/python/make_wheel.py. */
async function wheels(): Promise<ContextEntry[]> {
  const sources = join(FIXTURES, 'packages', 'python');
  const out = mkdtempSync(join(tmpdir(), 'fib-wheels-'));
  try {
    const entries: ContextEntry[] = [];
    for (const entry of readdirSync(sources, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const made = await exec(PYTHON, [join(sources, 'make_wheel.py'), join(sources, entry.name), out]);
      if (made.code !== 0) throw new Error(`make_wheel.py ${entry.name} failed: ${made.stderr}`);
      const fileName = made.stdout.trim();
      entries.push(generated(`rootfs/offline-wheels/${fileName}`, readFileSync(join(out, fileName))));
    }
    return entries;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const PYTHON_SKIPPED_DIRS = new Set(['test', 'tests', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'pydoc_data', 'site-packages', 'dist-packages', 'venv']);

function pythonStdlibSkip(rel: string, isDirectory: boolean): boolean {
  const parts = rel.split('/');
  const base = parts[parts.length - 1] ?? '';
  if (isDirectory) return PYTHON_SKIPPED_DIRS.has(base) || base.startsWith('config-');
  if (parts[0] === 'lib-dynload') return /^(_test|_ctypes_test|xxlimited|_xxtestfuzz)/.test(base);
  // Optimised bytecode is never used (no -O); sitecustomize points into the host's /etc.
  return /\.opt-[12]\.pyc$/.test(base) || base === 'EXTERNALLY-MANAGED' || base === 'sitecustomize.py' || base === 'turtle.py';
}

const RECIPES: Record<RuntimeImageName, Recipe> = {
  nodejs: {
    name: 'nodejs',
    dockerfile: join(FIXTURES, 'runtimes', 'nodejs', 'Dockerfile'),
    entries: async () => [
      ...baseSystem(),
      ...(await busybox()),
      { ...file('rootfs/usr/local/bin/node', realPath(NODE_BINARY), 0o755), strip: true },
      ...(await sharedLibraries([realPath(NODE_BINARY)])),
      file('rootfs/kubeless-runtime/kubeless.js', join(FIXTURES, 'runtimes', 'nodejs', 'kubeless.js'), 0o644),
    ],
  },
  'nodejs-install': {
    name: 'nodejs-install',
    base: 'nodejs',
    dockerfile: join(FIXTURES, 'runtimes', 'nodejs-install', 'Dockerfile'),
    entries: async () => {
      const packages = join(FIXTURES, 'packages', 'nodejs');
      const tarballs: ContextEntry[] = [];
      for (const entry of readdirSync(packages, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const { fileName, content } = await npmTarball(join(packages, entry.name));
        tarballs.push(generated(`rootfs/offline-packages/${fileName}`, content));
      }
      return [
        // npm's docs and man pages are not needed to install anything.
        ...tree('rootfs/usr/local/lib/node_modules/npm', NPM_DIR, (rel, isDir) => isDir && (rel === 'docs' || rel === 'man')),
        symlink('rootfs/usr/local/bin/npm', '../lib/node_modules/npm/bin/npm-cli.js'),
        symlink('rootfs/usr/local/bin/npx', '../lib/node_modules/npm/bin/npx-cli.js'),
        file('rootfs/usr/local/etc/npmrc', join(FIXTURES, 'runtimes', 'nodejs-install', 'npmrc'), 0o644),
        file('rootfs/kubeless-npm-install.sh', join(FIXTURES, 'runtimes', 'nodejs-install', 'kubeless-npm-install.sh'), 0o755),
        ...tarballs,
      ];
    },
  },
  python: {
    name: 'python',
    dockerfile: join(FIXTURES, 'runtimes', 'python', 'Dockerfile'),
    entries: async () => {
      const stdlib = tree(`rootfs${PYTHON_STDLIB}`, PYTHON_STDLIB, pythonStdlibSkip);
      const extensions = stdlib.filter((e) => e.type === 'file' && e.source?.endsWith('.so')).map((e) => e.source as string);
      return [
        ...baseSystem(),
        ...(await busybox()),
        file('rootfs/usr/bin/python3.11', realPath(PYTHON), 0o755),
        symlink('rootfs/usr/bin/python3', 'python3.11'),
        symlink('rootfs/usr/bin/python', 'python3.11'),
        ...stdlib,
        directory(`rootfs${DEBIAN_DIST_PACKAGES}`),
        ...(await sharedLibraries([realPath(PYTHON), ...extensions])),
        file('rootfs/kubeless-runtime/kubeless.py', join(FIXTURES, 'runtimes', 'python', 'kubeless.py'), 0o644),
      ];
    },
  },
  'python-install': {
    name: 'python-install',
    base: 'python',
    dockerfile: join(FIXTURES, 'runtimes', 'python-install', 'Dockerfile'),
    entries: async () => {
      const pipInfo = readdirSync(DEBIAN_DIST_PACKAGES).find((name) => /^pip-[\d.]+\.dist-info$/.test(name));
      if (!pipInfo) throw new Error(`no pip in ${DEBIAN_DIST_PACKAGES}: install Debian's python3-pip`);
      const noOptimised = (rel: string) => /\.opt-[12]\.pyc$/.test(rel);
      return [
        directory(`rootfs${DEBIAN_DIST_PACKAGES}/pip`),
        ...tree(`rootfs${DEBIAN_DIST_PACKAGES}/pip`, join(DEBIAN_DIST_PACKAGES, 'pip'), (rel, isDir) => !isDir && noOptimised(rel)),
        directory(`rootfs${DEBIAN_DIST_PACKAGES}/${pipInfo}`),
        ...tree(`rootfs${DEBIAN_DIST_PACKAGES}/${pipInfo}`, join(DEBIAN_DIST_PACKAGES, pipInfo), () => false),
        file('rootfs/usr/local/bin/pip', join(FIXTURES, 'runtimes', 'python-install', 'pip'), 0o755),
        symlink('rootfs/usr/local/bin/pip3', 'pip'),
        file('rootfs/etc/pip.conf', join(FIXTURES, 'runtimes', 'python-install', 'pip.conf'), 0o644),
        ...(await wheels()),
      ];
    },
  },
};

function realPath(path: string): string {
  let current = path;
  for (let i = 0; i < 40 && lstatSync(current).isSymbolicLink(); i++) current = resolve(dirname(current), readlinkSync(current));
  return current;
}

// ---------------------------------------------------------------------------------------------
// Building into the local daemon.

export interface LocalRuntimeImage {
  name: RuntimeImageName;
  /** fib-runtime/<name>:<hash> */
  tag: string;
  /** Image ID, sha256:... */
  id: string;
  /** Hash of every input (first 24 hex). */
  hash: string;
  /** Built by this call (false: found in the local cache). */
  built: boolean;
  /** Seconds spent hashing, assembling and building (or only hashing, when cached). */
  seconds: number;
}

function sortEntries(entries: ContextEntry[]): ContextEntry[] {
  const byName = new Map<string, ContextEntry>();
  for (const entry of entries) byName.set(entry.name, entry);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function sha256OfFile(path: string): Promise<string> {
  // Thousands of small files (stdlib, npm): reading each at once is far cheaper than a stream each.
  if (statSync(path).size < 8 * 1024 * 1024) return createHash('sha256').update(readFileSync(path)).digest('hex');
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

async function inputHash(recipe: Recipe, entries: ContextEntry[], baseHash: string | undefined): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`${RECIPE_FORMAT}\n${baseHash ?? ''}\n`);
  hash.update(readFileSync(recipe.dockerfile));
  for (const entry of entries) {
    const content =
      entry.type !== 'file' ? '' : entry.content ? createHash('sha256').update(entry.content).digest('hex') : await sha256OfFile(entry.source as string);
    hash.update(`\n${entry.name}\0${entry.type}\0${entry.mode.toString(8)}\0${entry.linkname ?? ''}\0${entry.strip ? 'strip' : ''}\0${content}`);
  }
  return hash.digest('hex').slice(0, 24);
}

async function imageId(reference: string): Promise<string | undefined> {
  const result = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', reference]);
  return result.code === 0 ? result.stdout.trim() : undefined;
}

/** Streams the context tar (Dockerfile + entries) into `docker build -` and returns the image ID. */
async function dockerBuild(recipe: Recipe, entries: ContextEntry[], tag: string, baseTag: string | undefined): Promise<string> {
  const temp = mkdtempSync(join(tmpdir(), 'fib-runtime-build-'));
  try {
    const args = [
      'build',
      '--quiet',
      '--force-rm',
      '--tag',
      tag,
      '--label',
      `${TEST_LABEL}=${RUNTIME_IMAGE_LABEL_VALUE}`,
      '--label',
      `${RUNTIME_IMAGE_LABEL}=${recipe.name}`,
      ...(baseTag ? ['--build-arg', `RUNTIME_IMAGE=${baseTag}`] : []),
      '-',
    ];
    // The classic builder: BuildKit is not installed everywhere this runs.
    const child = spawn('docker', args, { env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const exited = new Promise<number>((resolveExit, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolveExit(code ?? -1));
    });

    const pack = tar.pack();
    const feeding = pipeline(pack, child.stdin).catch(() => undefined); // a failed build closes stdin early
    const header = (entry: ContextEntry, size?: number): Partial<tar.Header> & { name: string } => ({
      name: entry.name,
      type: entry.type,
      mode: entry.mode,
      mtime: entry.mtime ?? GENERATED_MTIME,
      uid: 0,
      gid: 0,
      ...(size !== undefined ? { size } : {}),
      ...(entry.linkname ? { linkname: entry.linkname } : {}),
    });
    const writing = (async () => {
      pack.entry({ name: 'Dockerfile', mode: 0o644, mtime: GENERATED_MTIME }, readFileSync(recipe.dockerfile));
      for (const entry of entries) {
        if (entry.type !== 'file') {
          pack.entry(header(entry));
          continue;
        }
        if (entry.content) {
          pack.entry(header(entry, entry.content.length), entry.content);
          continue;
        }
        let source = entry.source as string;
        if (entry.strip) {
          // Without binutils' strip the image is only bigger, not wrong: use the file as it is.
          const target = join(temp, 'stripped');
          const stripped = await exec(STRIP, ['--strip-all', '-o', target, source]).catch(() => undefined);
          if (stripped?.code === 0) source = target;
          else console.warn(`runtime images: could not strip ${source} (${stripped?.stderr.trim() || `${STRIP} not found`}); using it unstripped`);
        }
        await pipeline(createReadStream(source), pack.entry(header(entry, statSync(source).size)));
      }
      pack.finalize();
    })();
    // A context that cannot be sent must not leave docker waiting for the rest of it.
    const writeError = writing.then(
      () => undefined,
      (error: Error) => {
        pack.destroy(error);
        child.kill();
        return error;
      },
    );
    const code = await exited;
    const failedWrite = await writeError;
    await feeding;
    // docker's own message first: when the build fails, sending the rest of the context fails too.
    if (code !== 0) {
      throw new Error(`docker build of runtime image ${recipe.name} exited ${code}: ${Buffer.concat(err).toString().trim() || failedWrite?.message}`);
    }
    if (failedWrite) throw failedWrite;
    return Buffer.concat(out).toString().trim();
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Removes cached images of this name whose inputs were superseded a while ago. */
async function pruneSuperseded(name: RuntimeImageName, current: string): Promise<void> {
  const tags = (await docker(['images', `${RUNTIME_IMAGE_REPOSITORY}/${name}`, '--format', '{{.Repository}}:{{.Tag}}']))
    .split('\n')
    .filter((tag) => tag && tag !== current && !tag.endsWith(':<none>'));
  for (const tag of tags) {
    const created = Date.parse((await docker(['image', 'inspect', '--format', '{{.Created}}', tag]).catch(() => '')).trim());
    // A concurrent run of an older checkout may still be using a recent one: leave those.
    if (Number.isFinite(created) && Date.now() - created > PRUNE_AFTER_MS) {
      await exec('docker', ['rmi', tag]);
    }
  }
}

const building = new Map<RuntimeImageName, Promise<LocalRuntimeImage>>();

/** Builds one runtime image (and its base) into the local daemon, once per process; cached by input hash. */
export function buildRuntimeImage(name: RuntimeImageName): Promise<LocalRuntimeImage> {
  let promise = building.get(name);
  if (!promise) {
    promise = buildUncached(name);
    building.set(name, promise);
    promise.catch(() => building.delete(name));
  }
  return promise;
}

async function buildUncached(name: RuntimeImageName): Promise<LocalRuntimeImage> {
  const recipe = RECIPES[name];
  const base = recipe.base ? await buildRuntimeImage(recipe.base) : undefined;
  const started = performance.now();
  const entries = sortEntries(await recipe.entries());
  const hash = await inputHash(recipe, entries, base?.hash);
  const tag = `${RUNTIME_IMAGE_REPOSITORY}/${name}:${hash}`;
  const existing = await imageId(tag);
  if (existing) return { name, tag, id: existing, hash, built: false, seconds: (performance.now() - started) / 1000 };
  await dockerBuild(recipe, entries, tag, base?.tag);
  const id = await imageId(tag);
  if (!id) throw new Error(`docker build of runtime image ${name} left no image ${tag}`);
  await pruneSuperseded(name, tag).catch(() => undefined);
  return { name, tag, id, hash, built: true, seconds: (performance.now() - started) / 1000 };
}

const IMAGES_OF: Record<RuntimeName, RuntimeImageName[]> = {
  nodejs: ['nodejs', 'nodejs-install'],
  python: ['python', 'python-install'],
};

/** Builds the images of the given runtimes (default: all), languages in parallel. */
export async function buildRuntimeImages(runtimes: RuntimeName[] = ['nodejs', 'python']): Promise<Partial<Record<RuntimeImageName, LocalRuntimeImage>>> {
  const names = runtimes.flatMap((runtime) => IMAGES_OF[runtime]);
  const images = await Promise.all(names.map((name) => buildRuntimeImage(name)));
  return Object.fromEntries(images.map((image) => [image.name, image]));
}

/** Removes every cached runtime image (any input hash) from the local daemon. */
export async function removeRuntimeImages(): Promise<void> {
  building.clear();
  // Installation images first: they are children of the runtime images.
  for (const name of ['nodejs-install', 'python-install', 'nodejs', 'python'] as RuntimeImageName[]) {
    const tags = (await docker(['images', `${RUNTIME_IMAGE_REPOSITORY}/${name}`, '--format', '{{.Repository}}:{{.Tag}}'])).split('\n').filter(Boolean);
    for (const tag of tags) await exec('docker', ['rmi', tag]);
  }
}

// ---------------------------------------------------------------------------------------------
// Pushing to a test registry and the catalog.

export interface PushedRuntimeImage {
  name: RuntimeImageName;
  /** <host>/kubeless/<name> */
  repository: string;
  /** The tag pushed, e.g. 24 or 3.11. */
  tag: string;
  /** Manifest digest, sha256:... */
  digest: string;
  /** repository@digest, as the catalog names it. */
  reference: string;
}

export interface RuntimeImagePhase {
  phase: 'installation' | 'compilation' | 'runtime';
  image: string;
  command?: string;
  env?: Record<string, string>;
}

/** One entry of Kubeless's `runtime-images` JSON. */
export interface RuntimeCatalogEntry {
  ID: string;
  depName: string;
  fileNameSuffix: string;
  versions: { name: string; version: string; images: RuntimeImagePhase[] }[];
}

export interface RuntimeCatalogOptions {
  /** Which runtimes to build, push and list. Default: nodejs and python. */
  runtimes?: RuntimeName[];
  /** Keep the local <host>/kubeless/...:<version> tags after the push (default: removed at once). */
  keepTags?: boolean;
}

export interface PushedRuntimes {
  catalog: RuntimeCatalogEntry[];
  images: Partial<Record<RuntimeImageName, PushedRuntimeImage>>;
  /** Seconds spent building (or finding) the local images, and pushing. */
  seconds: { build: number; push: number };
}

const pushed = new Map<string, Promise<PushedRuntimes>>();

function pushKey(registry: Pick<RegistryHandle, 'host' | 'dir'>, runtimes: RuntimeName[]): string {
  return `${registry.dir}\0${registry.host}\0${[...runtimes].sort().join(',')}`;
}

async function pushImage(
  registry: Pick<RegistryHandle, 'host' | 'username' | 'password'>,
  local: LocalRuntimeImage,
  version: string,
  options: RuntimeCatalogOptions,
): Promise<PushedRuntimeImage> {
  const repository = `${registry.host}/kubeless/${local.name}`;
  const target = `${repository}:${version}`;
  // Registries with credentials get them through a throw-away client config; anonymous ones need none.
  const config = registry.username !== undefined ? dockerClientConfig(registry) : undefined;
  const configArgs = config ? ['--config', config.dir] : [];
  try {
    await docker(['tag', local.tag, target]);
    const output = await docker([...configArgs, 'push', target]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
    if (!digest) throw new Error(`docker push ${target} printed no digest:\n${output}`);
    return { name: local.name, repository, tag: version, digest, reference: `${repository}@${digest}` };
  } finally {
    config?.cleanup();
    if (!options.keepTags) await exec('docker', ['rmi', target]);
  }
}

/**
 * Builds (once per process) and pushes the runtime images to `registry` (once per registry), and
 * returns the catalog with every image pinned by digest plus what was pushed.
 */
export function pushRuntimeImages(registry: RegistryHandle, options: RuntimeCatalogOptions = {}): Promise<PushedRuntimes> {
  const runtimes = options.runtimes ?? ['nodejs', 'python'];
  const key = pushKey(registry, runtimes);
  let promise = pushed.get(key);
  if (!promise) {
    promise = pushUncached(registry, runtimes, options);
    pushed.set(key, promise);
    promise.catch(() => pushed.delete(key));
  }
  return promise;
}

async function pushUncached(registry: RegistryHandle, runtimes: RuntimeName[], options: RuntimeCatalogOptions): Promise<PushedRuntimes> {
  const buildStarted = performance.now();
  const local = await buildRuntimeImages(runtimes);
  const pushStarted = performance.now();
  // Per language: the runtime image first, so its layers already exist when the installation image
  // (built on it) is pushed; the languages in parallel.
  const perRuntime = await Promise.all(
    runtimes.map(async (runtime) => {
      const [runtimeName, installName] = IMAGES_OF[runtime] as [RuntimeImageName, RuntimeImageName];
      const version = RUNTIME_DEFINITIONS[runtime].version;
      const runtimeImage = await pushImage(registry, local[runtimeName] as LocalRuntimeImage, version, options);
      const installImage = await pushImage(registry, local[installName] as LocalRuntimeImage, version, options);
      return { runtime, runtimeImage, installImage };
    }),
  );
  const seconds = { build: (pushStarted - buildStarted) / 1000, push: (performance.now() - pushStarted) / 1000 };
  const images: Partial<Record<RuntimeImageName, PushedRuntimeImage>> = {};
  const catalog: RuntimeCatalogEntry[] = perRuntime.map(({ runtime, runtimeImage, installImage }) => {
    images[runtimeImage.name] = runtimeImage;
    images[installImage.name] = installImage;
    const r = RUNTIME_DEFINITIONS[runtime];
    return {
      ID: r.ID,
      depName: r.depName,
      fileNameSuffix: r.fileNameSuffix,
      versions: [
        {
          name: r.versionName,
          version: r.version,
          images: [
            { phase: 'installation', image: installImage.reference, command: r.installCommand },
            { phase: 'runtime', image: runtimeImage.reference, env: { ...r.runtimeEnv } },
          ],
        },
      ],
    };
  });
  return { catalog, images, seconds };
}

/**
 * The Kubeless `runtime-images` catalog (parsed JSON) for `registry`: nodejs 24 (Function runtime
 * `nodejs24`) and python 3.11 (`python3.11`), installation and runtime images by digest.
 */
export async function runtimeCatalogFor(registry: RegistryHandle, options: RuntimeCatalogOptions = {}): Promise<RuntimeCatalogEntry[]> {
  const { catalog } = await pushRuntimeImages(registry, options);
  return structuredClone(catalog);
}

/**
 * Removes every local reference to <host>/kubeless/{nodejs,nodejs-install,python,python-install} —
 * tags and repo@digest references, e.g. those a test's build pulled — without touching the cached
 * fib-runtime/ images. Call it before stopping the registry.
 */
export async function releaseRuntimeImages(registry: Pick<RegistryHandle, 'host'>): Promise<void> {
  for (const key of [...pushed.keys()]) if (key.split('\0')[1] === registry.host) pushed.delete(key);
  // Only the repositories pushed here: a test may well build its own images under <host>/kubeless/.
  const repositories = new Set(Object.keys(RECIPES).map((name) => `${registry.host}/kubeless/${name}`));
  const lines = (await docker(['images', '--digests', '--format', '{{.Repository}}\t{{.Tag}}\t{{.Digest}}'])).split('\n');
  const references = new Set<string>();
  for (const line of lines) {
    const [repository, tag, digest] = line.split('\t');
    if (!repository || !repositories.has(repository)) continue;
    if (tag && tag !== '<none>') references.add(`${repository}:${tag}`);
    if (digest && digest !== '<none>') references.add(`${repository}@${digest}`);
  }
  for (const reference of references) await exec('docker', ['rmi', reference]);
}
