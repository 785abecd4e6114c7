// The one reading of a failed pull's daemon message, shared by the Dockerfile build (FROM) and the
// registry engine's step (the step's image): the wordings below are those dockerd 20.10+ relays
// from distribution, Docker Hub and token registries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BaseImageError } from '../../lib/docker/errors.ts';
import { pullFailure } from '../../lib/docker/pull-failure.ts';

const image = 'registry.example:5000/kubeless/nodejs@sha256:' + '0'.repeat(64);

test('a missing image is a user error naming the image and the catalog entry to check', () => {
  for (const message of [
    'manifest for registry.example:5000/kubeless/nodejs not found: manifest unknown: manifest unknown',
    'error parsing HTTP 404 response body: name unknown: repository name not known to registry',
    'No such image: kubeless/nodejs:24',
  ]) {
    const error = pullFailure(image, message, { what: 'base image' });
    assert.instance(error, BaseImageError);
    assert.is(error.code, 'E_BASE_IMAGE_NOT_FOUND', message);
    assert.is(error.kind, 'user');
    assert.match(error.message, `the base image ${image} does not exist in its registry`);
    assert.match(error.message, 'Check the runtime catalog entry');
    assert.is(error.details.image, image);
    assert.is(error.details.daemonMessage, message);
  }
});

test('a refused pull is a user error naming the image and asking for a credential', () => {
  for (const message of [
    'Head "https://registry.example:5000/v2/kubeless/nodejs/manifests/sha256:00": no basic auth credentials',
    'unauthorized: authentication required',
    'denied: requested access to the resource is denied',
    'error from registry: forbidden',
  ]) {
    const error = pullFailure(image, message, { what: 'image of the install step' });
    assert.is(error.code, 'E_BASE_IMAGE_PULL_FAILED', message);
    assert.is(error.kind, 'user', message);
    assert.match(error.message, `the image of the install step ${image}`);
    assert.match(error.message, 'Give a credential for its registry in the docker config');
  }
});

test("Docker Hub's ambiguous denial is a missing image whose advice names both remedies", () => {
  const error = pullFailure(image, "pull access denied for kubeless/nodejs, repository does not exist or may require 'docker login': denied: requested access to the resource is denied");
  assert.is(error.code, 'E_BASE_IMAGE_NOT_FOUND');
  assert.is(error.kind, 'user');
  assert.match(error.message, 'Check the runtime catalog entry');
  assert.match(error.message, 'give a credential for its registry');
});

test('any other failure may pass on a retry: infrastructure, naming the image and keeping the details', () => {
  const error = pullFailure(image, 'Get "https://registry.example:5000/v2/": dial tcp 10.0.0.1:5000: connect: connection refused', { details: { step: `FROM ${image}` } });
  assert.is(error.code, 'E_BASE_IMAGE_PULL_FAILED');
  assert.is(error.kind, 'infrastructure');
  assert.match(error.message, `pulling the image ${image} failed: Get`);
  assert.is(error.details.step, `FROM ${image}`);
  assert.is(error.details.image, image);
});

test.run();
