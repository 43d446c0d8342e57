/**
 * Classification of Azure errors (STYLE.md habit 4: the provider classifies, `withRetries` retries).
 * Every ARM call goes through `armCall`, which turns the SDK's RestError (and core-lro's "long-running
 * operation has failed" Error) into an `AzureError`: a DssnapError with the HTTP status, ARM's error
 * code, whether it means "not found" and whether a retry can help — and a message a user can act on.
 */
import { DssnapError, isDssnapError } from '../../src/errors.js';

/** 409 codes that mean "busy, try again" (another operation holds the VM or the disk). */
const retryableConflicts = new Set([
  'conflict',
  'operationnotallowed',
  'attachdiskwhilebeingdetached',
  'operationpreempted',
  'retryableerror',
  'toomanyrequests',
]);

/** Codes of failed long-running operations that a retry may fix. */
const retryableOperationCodes = new Set([
  'internalexecutionerror',
  'internaloperationerror',
  'internalservererror',
  'operationpreempted',
  'retryableerror',
  'conflict',
  'operationnotallowed',
  'toomanyrequests',
  'serverbusy',
]);

/** Errors of @azure/identity: no credential in the chain could issue a token. */
const credentialErrors = new Set([
  'CredentialUnavailableError',
  'AggregateAuthenticationError',
  'AuthenticationError',
]);

/** 404 codes that are about the scope, not the resource: a wrong setting, never "already gone". */
const scopeNotFound = new Set(['resourcegroupnotfound', 'subscriptionnotfound', 'invalidresourcetype']);

export interface AzureErrorFields {
  /** What was attempted, as it reads after "Azure failed to": "create snapshot x of disk y". */
  operation: string;
  statusCode?: number;
  armCode?: string;
  notFound: boolean;
  retryable: boolean;
  /** For AuthorizationFailed: the RBAC action that was refused. */
  action?: string;
}

export class AzureError extends DssnapError {
  readonly statusCode: number | undefined;
  readonly armCode: string | undefined;
  readonly notFound: boolean;
  readonly retryable: boolean;
  readonly action: string | undefined;

  constructor(fields: AzureErrorFields, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(fields.notFound ? 'NOT_FOUND' : 'PROVIDER_ERROR', message, {
      ...options,
      details: {
        provider: 'azure',
        operation: fields.operation,
        statusCode: fields.statusCode,
        armCode: fields.armCode,
        ...(fields.action ? { action: fields.action } : {}),
      },
    });
    this.name = 'AzureError';
    this.statusCode = fields.statusCode;
    this.armCode = fields.armCode;
    this.notFound = fields.notFound;
    this.retryable = fields.retryable;
    this.action = fields.action;
  }
}

interface RestErrorLike {
  name: string;
  message: string;
  statusCode?: number;
  code?: string;
}

function isRestError(error: unknown): error is RestErrorLike {
  return error instanceof Error && error.name === 'RestError';
}

/**
 * Run one ARM call; translate its failure into an AzureError (an AzureError or another DssnapError
 * passes through). `operation` names what was attempted, for the message.
 */
export async function armCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toAzureError(operation, error);
  }
}

/** The AzureError for a failed call (see `armCall`). Pure. */
export function toAzureError(operation: string, error: unknown): DssnapError {
  if (isDssnapError(error)) return error;
  if (error instanceof Error && error.name === 'AbortError') {
    return new DssnapError('INTERRUPTED', `Interrupted while Azure was asked to ${operation}`, {
      cause: error,
    });
  }
  if (isRestError(error)) return fromRestError(operation, error);
  if (error instanceof Error && credentialErrors.has(error.name)) {
    return new AzureError(
      { operation, notFound: false, retryable: false },
      `No Azure credential to ${operation}: ${firstLine(error.message)}`,
      {
        hint: 'dssnap uses the default Azure credential chain (environment, workload identity, managed identity, Azure CLI): enable a managed identity on this VM (set managedIdentityClientId for a user-assigned one).',
        cause: error,
      },
    );
  }
  const failed = /long-running operation has failed\. ([A-Za-z]+)\. ([\s\S]*)$/.exec(
    error instanceof Error ? error.message : '',
  );
  if (failed) {
    const code = failed[1]!;
    return new AzureError(
      {
        operation,
        armCode: code,
        notFound: /notfound$/i.test(code),
        retryable: retryableOperationCodes.has(code.toLowerCase()),
      },
      `Azure failed to ${operation}: the operation ended with ${code}: ${failed[2]!.trim()}`,
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  // Network failures without a response (ECONNRESET, timeouts) are worth a retry.
  return new AzureError(
    { operation, notFound: false, retryable: true },
    `Azure failed to ${operation}: ${message}`,
    {
      cause: error,
    },
  );
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .find((line) => line.trim() !== '')
      ?.trim() ?? text
  );
}

function fromRestError(operation: string, error: RestErrorLike): AzureError {
  const status = error.statusCode;
  const code = error.code;
  const lower = code?.toLowerCase() ?? '';
  const fields = { operation, statusCode: status, armCode: code };
  if (status === 403 && (lower === 'authorizationfailed' || lower === 'linkedauthorizationfailed')) {
    const action = /perform action '([^']+)'/.exec(error.message)?.[1];
    return new AzureError(
      { ...fields, notFound: false, retryable: false, ...(action ? { action } : {}) },
      `Azure refused to ${operation}: the identity lacks the RBAC permission '${action ?? 'unknown'}' (AuthorizationFailed)`,
      {
        hint: `Grant '${action ?? 'the missing action'}' to the VM's managed identity on the resource group (a custom role with the actions listed by 'dssnap doctor --provider azure', README "Azure provider"); role assignments take a few minutes to apply.`,
        cause: error,
      },
    );
  }
  if (status === 401) {
    return new AzureError(
      { ...fields, notFound: false, retryable: false },
      `Azure refused to ${operation}: authentication failed (${code ?? 401}): ${error.message}`,
      {
        hint: 'dssnap authenticates with the default Azure credential chain: enable a managed identity on the VM (or set managedIdentityClientId for a user-assigned one).',
        cause: error,
      },
    );
  }
  const notFound = status === 404 && !scopeNotFound.has(lower);
  const retryable =
    status === undefined ||
    status === 408 ||
    status === 429 ||
    status >= 500 ||
    (status === 409 && retryableConflicts.has(lower));
  const hint = scopeNotFound.has(lower)
    ? 'Check the subscription and resource group (provider-options subscription / resourceGroup / snapshotResourceGroup, or what IMDS reports).'
    : undefined;
  return new AzureError(
    { ...fields, notFound, retryable },
    `Azure failed to ${operation}: ${status ?? 'no response'} ${code ?? ''}: ${error.message}`.replace(
      /\s+:/,
      ':',
    ),
    { ...(hint ? { hint } : {}), cause: error },
  );
}

/** True when the error means "that resource does not exist". */
export function isAzureNotFound(error: unknown): boolean {
  if (error instanceof AzureError) return error.notFound;
  if (isRestError(error))
    return error.statusCode === 404 && !scopeNotFound.has(error.code?.toLowerCase() ?? '');
  return isDssnapError(error) && error.code === 'NOT_FOUND';
}

/** True when retrying cannot help. */
export function isAzurePermanent(error: unknown): boolean {
  if (error instanceof AzureError) return !error.retryable;
  if (isDssnapError(error)) return error.details.retryable !== true;
  if (isRestError(error)) return !toAzureErrorRetryable(error);
  return false;
}

function toAzureErrorRetryable(error: RestErrorLike): boolean {
  return fromRestError('call Azure', error).retryable;
}
