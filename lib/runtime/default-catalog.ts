// The runtimes Kubeless shipped, in its runtime-images format. The nodejs 10, 12 and 14 images are
// pinned to the digests of Kubeless's last published runtimes catalog (stable/nodejs/nodejs.jsonnet
// of the kubeless runtimes repository). For the others no upstream digest could be confirmed: they
// are named by the tag Kubeless published, and the builder resolves each tag to a digest before
// building (the image tag hashes that digest, so a moved tag gives a new function image, never a
// stale one). Clusters that mirror these images, or that need exact pins, pass their own catalog
// (kubeless-config runtime-images).
import { parseRuntimeCatalog, type RuntimeCatalog } from './catalog.ts';

const NODEJS10 = 'kubeless/nodejs@sha256:09dcc6a644a2e28fa13988ff6e3755627cb83ac0e65f9a89c8c2a13c3560493b';
const NODEJS12 = 'kubeless/nodejs@sha256:90fd5aed17af289489b7ae32233d268dd5cc4c9ebc6b934910fd5f1bbdb7cdd1';
const NODEJS14 = 'kubeless/nodejs@sha256:f3645b5e8417e5bcc905446e1fac8a7d565be74eeba4fd80c2487c5d43a32a7b';
const NODE_ENV = { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' };

function nodejs(version: string, image: string) {
  return {
    name: `node${version}`,
    version,
    images: [
      { phase: 'installation', image, command: '/kubeless-npm-install.sh' },
      { phase: 'runtime', image, env: NODE_ENV },
    ],
  };
}

function python(version: string) {
  return {
    name: `python${version}`,
    version,
    images: [
      {
        phase: 'installation',
        image: `python:${version}`,
        command: 'pip install --prefix=$KUBELESS_INSTALL_VOLUME -r $KUBELESS_DEPS_FILE',
      },
      {
        phase: 'runtime',
        image: `kubeless/python:${version}`,
        env: { PYTHONPATH: `$(KUBELESS_INSTALL_VOLUME)/lib/python${version}/site-packages:$(KUBELESS_INSTALL_VOLUME)` },
      },
    ],
  };
}

function ruby(version: string) {
  return {
    name: `ruby${version}`,
    version,
    images: [
      { phase: 'installation', image: `bitnami/ruby:${version}`, command: 'bundle install --gemfile=$KUBELESS_DEPS_FILE --path=$KUBELESS_INSTALL_VOLUME' },
      { phase: 'runtime', image: `kubeless/ruby:${version}` },
    ],
  };
}

function php(version: string) {
  return {
    name: `php${version}`,
    version,
    images: [
      { phase: 'installation', image: 'composer:1.10', command: 'composer install -d $KUBELESS_INSTALL_VOLUME' },
      { phase: 'runtime', image: `kubeless/php:${version}` },
    ],
  };
}

function compiled(id: string, version: string) {
  return {
    name: `${id}${version}`,
    version,
    images: [
      { phase: 'compilation', image: `kubeless/${id}-init:${version}`, command: '/compile-function.sh' },
      { phase: 'runtime', image: `kubeless/${id}:${version}` },
    ],
  };
}

export const DEFAULT_RUNTIME_IMAGES = [
  {
    ID: 'nodejs',
    depName: 'package.json',
    fileNameSuffix: '.js',
    versions: [nodejs('10', NODEJS10), nodejs('12', NODEJS12), nodejs('14', NODEJS14)],
  },
  { ID: 'python', depName: 'requirements.txt', fileNameSuffix: '.py', versions: ['3.6', '3.7', '3.8'].map(python) },
  { ID: 'ruby', depName: 'Gemfile', fileNameSuffix: '.rb', versions: ['2.3', '2.4', '2.5', '2.6'].map(ruby) },
  { ID: 'php', depName: 'composer.json', fileNameSuffix: '.php', versions: ['7.2', '7.3', '7.4'].map(php) },
  { ID: 'go', depName: 'go.mod', fileNameSuffix: '.go', versions: ['1.13', '1.14'].map((v) => compiled('go', v)) },
  { ID: 'java', depName: 'pom.xml', fileNameSuffix: '.java', versions: ['1.8', '11'].map((v) => compiled('java', v)) },
  { ID: 'dotnetcore', depName: 'project.csproj', fileNameSuffix: '.cs', versions: ['3.1'].map((v) => compiled('dotnetcore', v)) },
  { ID: 'ballerina', depName: '', fileNameSuffix: '.bal', versions: ['0.981.0'].map((v) => compiled('ballerina', v)) },
];

let cached: RuntimeCatalog | undefined;

/** The upstream Kubeless runtimes (see the note above on which images are pinned by digest). */
export function defaultRuntimeCatalog(): RuntimeCatalog {
  cached ??= parseRuntimeCatalog(DEFAULT_RUNTIME_IMAGES);
  return structuredClone(cached);
}
