import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import { defaultResource, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Env, ResolvedConfig } from '../config/types';
import type { Pm2Info } from './pm2';
import { ATTR_PROCESS_MANAGER, ATTR_WORKER_INDEX } from '../types';

// Incubating semantic-convention names are copied rather than imported from
// '@opentelemetry/semantic-conventions/incubating', as that package advises: the incubating entry
// point is large and its names may change between minor versions.
const ATTR_DEPLOYMENT_ENVIRONMENT_NAME = 'deployment.environment.name';
const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';
const ATTR_HOST_NAME = 'host.name';
const ATTR_PROCESS_PID = 'process.pid';
const ATTR_PROCESS_RUNTIME_NAME = 'process.runtime.name';
const ATTR_PROCESS_RUNTIME_VERSION = 'process.runtime.version';
const ATTR_PROCESS_RUNTIME_DESCRIPTION = 'process.runtime.description';

export interface WorkerIdentity {
  processManager: 'pm2' | 'node:cluster' | 'none';
  index: number | undefined;
}

export function workerIdentity(
  env: Env,
  pm2: Pm2Info | undefined,
  clusterWorkerId: number | undefined,
): WorkerIdentity {
  const explicit = env.FORKTRACE_WORKER_INDEX?.trim();
  const explicitIndex = explicit !== undefined && /^\d+$/.test(explicit) ? Number(explicit) : undefined;
  if (pm2) return { processManager: 'pm2', index: pm2.instance ?? explicitIndex ?? pm2.pmId };
  if (clusterWorkerId !== undefined) return { processManager: 'node:cluster', index: explicitIndex ?? clusterWorkerId };
  return { processManager: 'none', index: explicitIndex };
}

/**
 * Builds the resource synchronously from local facts only: no detector runs, so nothing here can
 * touch the network (cloud metadata probes included).
 */
export function buildResource(config: ResolvedConfig, worker: WorkerIdentity): Resource {
  const attributes: Record<string, string | number | boolean> = {
    ...config.resourceAttributes,
    [ATTR_SERVICE_NAME]: config.serviceName,
    [ATTR_SERVICE_INSTANCE_ID]: randomUUID(),
    [ATTR_HOST_NAME]: os.hostname(),
    [ATTR_PROCESS_PID]: process.pid,
    [ATTR_PROCESS_RUNTIME_NAME]: 'nodejs',
    [ATTR_PROCESS_RUNTIME_VERSION]: process.versions.node,
    [ATTR_PROCESS_RUNTIME_DESCRIPTION]: 'Node.js',
    [ATTR_PROCESS_MANAGER]: worker.processManager,
  };
  if (config.serviceVersion !== undefined) attributes[ATTR_SERVICE_VERSION] = config.serviceVersion;
  if (config.environment !== undefined) attributes[ATTR_DEPLOYMENT_ENVIRONMENT_NAME] = config.environment;
  if (worker.index !== undefined) attributes[ATTR_WORKER_INDEX] = worker.index;
  return defaultResource().merge(resourceFromAttributes(attributes));
}
