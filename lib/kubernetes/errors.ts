// Failures talking to the Kubernetes API, as BuilderErrors. A missing object or a denied request is
// something an operator has to fix (kind 'user'); an unreachable or failing API server may recover.
import { ApiException } from '@kubernetes/client-node';
import { BuilderError } from '../errors.ts';

/** HTTP status of a client-node API failure, or undefined when the request never got an answer. */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { code?: unknown; statusCode?: unknown } | null)?.statusCode ?? (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own explanation (Status.message), when it sent one. */
function statusMessage(error: unknown): string | undefined {
  if (!(error instanceof ApiException)) return undefined;
  let body: unknown = error.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.slice(0, 300) || undefined;
    }
  }
  const message = (body as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : undefined;
}

/**
 * Turns a client-node failure into a BuilderError. `action` says what was attempted, e.g.
 * `read ConfigMap kubeless/kubeless-config`, so the message names the object at fault.
 */
export function kubernetesError(error: unknown, action: string, hints: { notFound?: string } = {}): BuilderError {
  if (error instanceof BuilderError) return error;
  const status = statusOf(error);
  const serverSays = statusMessage(error);
  const said = serverSays ? `: ${serverSays}` : '';
  const details = { action, status };
  switch (status) {
    case undefined:
      return new BuilderError(
        'E_KUBERNETES_UNREACHABLE',
        'infrastructure',
        `could not ${action}: the Kubernetes API server did not answer (${(error as Error)?.message ?? String(error)}); check the kubeconfig's server address and the network`,
        { cause: error, details },
      );
    case 401:
      return new BuilderError('E_KUBERNETES_UNAUTHORIZED', 'user', `could not ${action}: the API server rejected the credentials of the kubeconfig (401)${said}`, { cause: error, details });
    case 403:
      return new BuilderError('E_KUBERNETES_FORBIDDEN', 'user', `could not ${action}: forbidden (403)${said}; grant the caller's service account this permission (RBAC)`, { cause: error, details });
    case 404:
      return new BuilderError('E_KUBERNETES_NOT_FOUND', 'user', `could not ${action}: not found (404)${hints.notFound ? `; ${hints.notFound}` : said}`, { cause: error, details });
    case 422:
    case 400:
      return new BuilderError('E_KUBERNETES_INVALID', 'user', `could not ${action}: the API server refused the object (${status})${said}`, { cause: error, details });
    default:
      return new BuilderError('E_KUBERNETES_API', 'infrastructure', `could not ${action}: the API server answered ${status}${said}`, { cause: error, details });
  }
}
